package kubeconfig

import (
	"strings"
	"testing"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const proxyURL = "https://proxy.example:9001"

var proxyCA = []byte("-----BEGIN CERTIFICATE-----\nproxy\n-----END CERTIFICATE-----\n")

// source is a kubeconfig with two users and contexts, as people have them.
func source() *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["prod"] = &clientcmdapi.Cluster{Server: "https://api.prod:6443"}
	cfg.AuthInfos["alice"] = &clientcmdapi.AuthInfo{ClientCertificateData: []byte("alice-cert"), ClientKeyData: []byte("alice-key")}
	cfg.AuthInfos["robot"] = &clientcmdapi.AuthInfo{Token: "robot-token"}
	cfg.Contexts["alice@prod"] = &clientcmdapi.Context{Cluster: "prod", AuthInfo: "alice", Namespace: "team-a"}
	cfg.Contexts["robot@prod"] = &clientcmdapi.Context{Cluster: "prod", AuthInfo: "robot"}
	cfg.CurrentContext = "alice@prod"
	return cfg
}

func TestForProxy(t *testing.T) {
	noCurrent := source()
	noCurrent.CurrentContext = ""
	tests := []struct {
		name          string
		src           *clientcmdapi.Config
		target        Target
		wantUser      string
		wantNamespace string
		wantContext   string
		wantErr       string
	}{
		{name: "current context", src: source(), target: Target{Server: proxyURL, CAData: proxyCA},
			wantUser: "alice", wantNamespace: "team-a", wantContext: DefaultContextName},
		{name: "named context", src: source(), target: Target{Server: proxyURL, Context: "robot@prod"},
			wantUser: "robot", wantContext: DefaultContextName},
		{name: "named user keeps the current namespace", src: source(), target: Target{Server: proxyURL, User: "robot"},
			wantUser: "robot", wantNamespace: "team-a", wantContext: DefaultContextName},
		{name: "named user without a current context", src: noCurrent, target: Target{Server: proxyURL, User: "robot"},
			wantUser: "robot", wantContext: DefaultContextName},
		{name: "own context name", src: source(), target: Target{Server: proxyURL, ContextName: "via-proxy"},
			wantUser: "alice", wantNamespace: "team-a", wantContext: "via-proxy"},
		{name: "no current context", src: noCurrent, target: Target{Server: proxyURL}, wantErr: "no current context"},
		{name: "unknown context", src: source(), target: Target{Server: proxyURL, Context: "nope"}, wantErr: `context "nope" not found`},
		{name: "unknown user", src: source(), target: Target{Server: proxyURL, User: "nope"}, wantErr: `user "nope" not found`},
		{name: "plain http", src: source(), target: Target{Server: "http://proxy:9001"}, wantErr: "https://"},
		{name: "no server", src: source(), target: Target{}, wantErr: "https://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ForProxy(tt.src, tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.CurrentContext != tt.wantContext || len(got.Contexts) != 1 || len(got.Clusters) != 1 || len(got.AuthInfos) != 1 {
				t.Fatalf("got current %q with %d contexts, %d clusters, %d users; want exactly one of each named %q",
					got.CurrentContext, len(got.Contexts), len(got.Clusters), len(got.AuthInfos), tt.wantContext)
			}
			ctx := got.Contexts[tt.wantContext]
			if ctx.AuthInfo != tt.wantUser || ctx.Namespace != tt.wantNamespace || ctx.Cluster != tt.wantContext {
				t.Errorf("context %+v, want user %q, namespace %q, cluster %q", ctx, tt.wantUser, tt.wantNamespace, tt.wantContext)
			}
			cluster := got.Clusters[tt.wantContext]
			if cluster.Server != proxyURL || string(cluster.CertificateAuthorityData) != string(tt.target.CAData) {
				t.Errorf("cluster %+v, want the proxy with its CA", cluster)
			}
			if !sameUser(got.AuthInfos[tt.wantUser], tt.src.AuthInfos[tt.wantUser]) {
				t.Errorf("user %q not copied unchanged", tt.wantUser)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	add, err := ForProxy(source(), Target{Server: proxyURL, CAData: proxyCA})
	if err != nil {
		t.Fatal(err)
	}
	stale := source()
	stale.Clusters[DefaultContextName] = &clientcmdapi.Cluster{Server: "https://old-proxy"}
	stale.Contexts[DefaultContextName] = &clientcmdapi.Context{Cluster: DefaultContextName, AuthInfo: "robot"}
	otherAlice := source()
	otherAlice.AuthInfos["alice"] = &clientcmdapi.AuthInfo{Token: "a-different-alice"}
	tests := []struct {
		name        string
		dst         *clientcmdapi.Config
		setCurrent  bool
		wantCurrent string
		wantErr     string
	}{
		{name: "into its own source keeps everything", dst: source(), wantCurrent: "alice@prod"},
		{name: "set current", dst: source(), setCurrent: true, wantCurrent: DefaultContextName},
		{name: "into an empty file", dst: clientcmdapi.NewConfig(), wantCurrent: DefaultContextName},
		{name: "replaces an earlier proxy context", dst: stale, wantCurrent: "alice@prod"},
		{name: "never replaces credentials", dst: otherAlice, wantErr: `user "alice" already exists`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.dst.DeepCopy()
			err := Merge(tt.dst, add, tt.setCurrent)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name := range before.Contexts {
				if _, ok := tt.dst.Contexts[name]; !ok {
					t.Errorf("context %q dropped", name)
				}
			}
			for name := range before.AuthInfos {
				if !sameUser(tt.dst.AuthInfos[name], before.AuthInfos[name]) {
					t.Errorf("user %q changed", name)
				}
			}
			for name := range before.Clusters {
				if _, ok := tt.dst.Clusters[name]; !ok {
					t.Errorf("cluster %q dropped", name)
				}
			}
			if got := tt.dst.Contexts[DefaultContextName]; got == nil || got.AuthInfo != "alice" || got.Namespace != "team-a" {
				t.Errorf("proxy context %+v, want alice in team-a", got)
			}
			if got := tt.dst.Clusters[DefaultContextName]; got == nil || got.Server != proxyURL {
				t.Errorf("proxy cluster %+v, want %s", got, proxyURL)
			}
			if _, ok := tt.dst.AuthInfos["alice"]; !ok {
				t.Error("user alice missing")
			}
			if tt.dst.CurrentContext != tt.wantCurrent {
				t.Errorf("current context %q, want %q", tt.dst.CurrentContext, tt.wantCurrent)
			}
		})
	}
}
