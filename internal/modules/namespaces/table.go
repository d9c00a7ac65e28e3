package namespaces

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/apiscope"
)

// namespaceColumns are the columns kube-apiserver's printer defines for namespaces.
var namespaceColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
	{Name: "Status", Type: "string", Description: "The status of the namespace"},
	{Name: "Age", Type: "string", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
}

// tableConvertor renders namespaces as kube-apiserver does for `as=Table` (kubectl's default output).
type tableConvertor struct{}

func (tableConvertor) ConvertToTable(_ context.Context, obj runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	noHeaders, err := apiscope.NoHeaders(tableOptions)
	if err != nil {
		return nil, err
	}
	table := &metav1.Table{}
	if !noHeaders {
		table.ColumnDefinitions = namespaceColumns
	}
	switch o := obj.(type) {
	case *corev1.NamespaceList:
		table.ResourceVersion = o.ResourceVersion
		table.Continue = o.Continue
		table.RemainingItemCount = o.RemainingItemCount
		table.Rows = make([]metav1.TableRow, 0, len(o.Items))
		for i := range o.Items {
			table.Rows = append(table.Rows, namespaceRow(&o.Items[i]))
		}
	case *corev1.Namespace:
		table.ResourceVersion = o.ResourceVersion
		table.Rows = []metav1.TableRow{namespaceRow(o)}
	default:
		return nil, fmt.Errorf("cannot render %T as a namespace table", obj)
	}
	return table, nil
}

func namespaceRow(ns *corev1.Namespace) metav1.TableRow {
	age := "<unknown>"
	if !ns.CreationTimestamp.IsZero() {
		age = duration.HumanDuration(time.Since(ns.CreationTimestamp.Time))
	}
	return metav1.TableRow{
		Cells:  []any{ns.Name, string(ns.Status.Phase), age},
		Object: runtime.RawExtension{Object: ns},
	}
}
