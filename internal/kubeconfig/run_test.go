package kubeconfig

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// sourceFile writes source() to dir/config with alice's certificate as a path relative to that file, as
// kubeadm and cloud CLIs often write it.
func sourceFile(t *testing.T, dir string) string {
	t.Helper()
	cfg := source()
	cfg.AuthInfos["alice"] = &clientcmdapi.AuthInfo{ClientCertificate: "certs/alice.crt", ClientKey: "certs/alice.key"}
	path := filepath.Join(dir, "config")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		// request fills in the request; src is the source kubeconfig, other an unrelated existing kubeconfig.
		request func(r *Request, src, other string)
		// wantFile is the file that must hold the proxy context ("" for stdout); "src" and "other" name those.
		wantFile    string
		wantCurrent string
		// wantCertPath is how alice's certificate must be spelt in wantFile.
		wantCertPath string
		wantErr      string
	}{
		{name: "prints a self-contained kubeconfig", request: func(*Request, string, string) {},
			wantCurrent: DefaultContextName, wantCertPath: "abs"},
		{name: "writes a new file", request: func(r *Request, _, _ string) { r.Output = "new" },
			wantFile: "new", wantCurrent: DefaultContextName, wantCertPath: "abs"},
		{name: "merges into the file that holds the user", request: func(r *Request, _, _ string) { r.Merge = true },
			wantFile: "src", wantCurrent: "alice@prod", wantCertPath: "certs/alice.crt"},
		{name: "merges and switches", request: func(r *Request, _, _ string) { r.Merge, r.SetCurrent = true, true },
			wantFile: "src", wantCurrent: DefaultContextName, wantCertPath: "certs/alice.crt"},
		{name: "merges into another file", request: func(r *Request, _, other string) { r.Merge, r.Output = true, other },
			wantFile: "other", wantCurrent: "theirs", wantCertPath: "abs"},
		{name: "refuses to overwrite the source", request: func(r *Request, src, _ string) { r.Output = src },
			wantErr: "use --merge"},
		{name: "missing CA file", request: func(r *Request, _, _ string) { r.CAFile = "/nonexistent/ca.crt" },
			wantErr: "certificate authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := sourceFile(t, dir)
			other := filepath.Join(dir, "other")
			theirs := clientcmdapi.NewConfig()
			theirs.Clusters["theirs"] = &clientcmdapi.Cluster{Server: "https://theirs"}
			theirs.AuthInfos["theirs"] = &clientcmdapi.AuthInfo{Token: "their-token"}
			theirs.Contexts["theirs"] = &clientcmdapi.Context{Cluster: "theirs", AuthInfo: "theirs"}
			theirs.CurrentContext = "theirs"
			if err := clientcmd.WriteToFile(*theirs, other); err != nil {
				t.Fatal(err)
			}
			caFile := filepath.Join(dir, "proxy-ca.crt")
			if err := os.WriteFile(caFile, proxyCA, 0o600); err != nil {
				t.Fatal(err)
			}
			srcBefore, _ := os.ReadFile(src)

			r := Request{Target: Target{Server: proxyURL, ContextName: DefaultContextName}, Kubeconfig: src, CAFile: caFile}
			tt.request(&r, src, other)
			if r.Output == "new" {
				r.Output = filepath.Join(dir, "sub", "proxy.kubeconfig")
			}
			var stdout bytes.Buffer
			written, err := Run(r, &stdout)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if after, _ := os.ReadFile(src); !bytes.Equal(after, srcBefore) {
					t.Error("source kubeconfig changed by a failed run")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}

			var got *clientcmdapi.Config
			switch tt.wantFile {
			case "":
				if written != "" {
					t.Errorf("wrote %s, want stdout", written)
				}
				got, err = clientcmd.Load(stdout.Bytes())
			default:
				want := map[string]string{"src": src, "other": other, "new": r.Output}[tt.wantFile]
				if written != want {
					t.Errorf("wrote %q, want %q", written, want)
				}
				if stdout.Len() > 0 {
					t.Errorf("printed %q as well", stdout.String())
				}
				assertPrivate(t, want)
				got, err = clientcmd.LoadFromFile(want)
			}
			if err != nil {
				t.Fatal(err)
			}
			assertProxyContext(t, got)
			if got.CurrentContext != tt.wantCurrent {
				t.Errorf("current context %q, want %q", got.CurrentContext, tt.wantCurrent)
			}
			wantCert := tt.wantCertPath
			if wantCert == "abs" {
				wantCert = filepath.Join(dir, "certs", "alice.crt")
			}
			if cert := got.AuthInfos["alice"].ClientCertificate; cert != wantCert {
				t.Errorf("alice's certificate at %q, want %q", cert, wantCert)
			}
			// Merging keeps every other entry of the file it merges into.
			keep := map[string]*clientcmdapi.Config{"src": source(), "other": theirs}[tt.wantFile]
			if keep != nil {
				for name := range keep.Contexts {
					if got.Contexts[name] == nil {
						t.Errorf("context %q dropped", name)
					}
				}
				for name := range keep.AuthInfos {
					if got.AuthInfos[name] == nil {
						t.Errorf("user %q dropped", name)
					}
				}
			}
		})
	}
}

func assertProxyContext(t *testing.T, cfg *clientcmdapi.Config) {
	t.Helper()
	ctx := cfg.Contexts[DefaultContextName]
	if ctx == nil || ctx.AuthInfo != "alice" || ctx.Cluster != DefaultContextName || ctx.Namespace != "team-a" {
		t.Fatalf("proxy context %+v, want alice in team-a on cluster %s", ctx, DefaultContextName)
	}
	cluster := cfg.Clusters[DefaultContextName]
	if cluster == nil || cluster.Server != proxyURL || !bytes.Equal(cluster.CertificateAuthorityData, proxyCA) {
		t.Errorf("proxy cluster %+v, want %s with the embedded CA", cluster, proxyURL)
	}
	if cfg.AuthInfos["alice"] == nil {
		t.Error("user alice missing")
	}
}

// assertPrivate: a kubeconfig holds credentials, so only its owner may read it.
func assertPrivate(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("%s has mode %v, want no access for others", path, perm)
	}
}
