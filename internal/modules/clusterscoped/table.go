package clusterscoped

import (
	"context"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/apiscope"
)

// ageColumn and age render creationTimestamp as kube-apiserver's printers do.
var ageColumn = metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]}

func age(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "<unknown>"
	}
	created := m.GetCreationTimestamp()
	if created.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(created.Time))
}

// tableConvertor renders a resource for `as=Table` (kubectl's default output): Name, then the resource's
// own columns.
type tableConvertor struct{ resource Resource }

func (c tableConvertor) ConvertToTable(_ context.Context, obj runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	noHeaders, err := apiscope.NoHeaders(tableOptions)
	if err != nil {
		return nil, err
	}
	table := &metav1.Table{}
	if !noHeaders {
		name := metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]}
		table.ColumnDefinitions = append([]metav1.TableColumnDefinition{name}, c.resource.Columns...)
	}
	if meta.IsListType(obj) {
		list, err := meta.ListAccessor(obj)
		if err != nil {
			return nil, fmt.Errorf("rendering %T as a table: %w", obj, err)
		}
		table.ResourceVersion, table.Continue, table.RemainingItemCount = list.GetResourceVersion(), list.GetContinue(), list.GetRemainingItemCount()
		table.Rows = []metav1.TableRow{}
		err = meta.EachListItem(obj, func(item runtime.Object) error {
			row, err := c.row(item)
			table.Rows = append(table.Rows, row)
			return err
		})
		return table, err
	}
	row, err := c.row(obj)
	if err != nil {
		return nil, err
	}
	m, _ := meta.Accessor(obj) // row checked it
	table.ResourceVersion = m.GetResourceVersion()
	table.Rows = []metav1.TableRow{row}
	return table, nil
}

func (c tableConvertor) row(obj runtime.Object) (metav1.TableRow, error) {
	// Cells asserts the resource's own type: refuse anything else instead of panicking.
	if kinds, _, err := scheme.ObjectKinds(obj); err != nil || !slices.Contains(kinds, c.resource.Kind) {
		return metav1.TableRow{}, fmt.Errorf("cannot render %T as a %s table", obj, c.resource.Kind.Kind)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return metav1.TableRow{}, fmt.Errorf("rendering %T as a table: %w", obj, err)
	}
	cells := append([]any{m.GetName()}, c.resource.Cells(obj)...)
	return metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: obj}}, nil
}
