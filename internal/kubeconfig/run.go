package kubeconfig

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Request is one run of `tenant-proxy kubeconfig`.
type Request struct {
	Target
	Kubeconfig string // source kubeconfig; empty means $KUBECONFIG, else ~/.kube/config
	CAFile     string // the proxy's CA, embedded into the new cluster
	Merge      bool   // add to an existing file instead of writing a self-contained one
	Output     string // file to write (or merge into); empty means stdout, or with Merge the file the user came from
	SetCurrent bool   // with Merge, make the new context the current one
}

// Run builds the proxy context from the source kubeconfig and prints or writes it. It returns the file written,
// or "" for stdout.
func Run(r Request, stdout io.Writer) (string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = r.Kubeconfig
	src, err := rules.Load() // resolves relative certificate paths, so the copied user works from any file
	if err != nil {
		return "", fmt.Errorf("kubeconfig: load: %w", err)
	}
	if r.CAFile != "" {
		if r.CAData, err = os.ReadFile(r.CAFile); err != nil {
			return "", fmt.Errorf("kubeconfig: certificate authority: %w", err)
		}
	}
	out, err := ForProxy(src, r.Target)
	if err != nil {
		return "", err
	}
	if !r.Merge {
		return writeNew(out, r.Output, rules.GetLoadingPrecedence(), stdout)
	}
	target := r.Output
	if target == "" {
		target = userOrigin(out, rules)
	}
	return target, mergeInto(target, out, r.SetCurrent)
}

// writeNew prints a self-contained kubeconfig, refusing to overwrite a source file (that is what --merge is for).
func writeNew(cfg *clientcmdapi.Config, path string, sources []string, stdout io.Writer) (string, error) {
	if path == "" {
		data, err := clientcmd.Write(*cfg)
		if err != nil {
			return "", fmt.Errorf("kubeconfig: %w", err)
		}
		_, err = stdout.Write(data)
		return "", err
	}
	for _, s := range sources {
		if samePath(s, path) {
			return "", fmt.Errorf("kubeconfig: %s is the source kubeconfig; use --merge to add to it", path)
		}
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("kubeconfig: write %s: %w", path, err)
	}
	return path, nil
}

// mergeInto adds cfg to the kubeconfig at path, creating it if needed and keeping everything else in it.
func mergeInto(path string, cfg *clientcmdapi.Config, setCurrent bool) error {
	dst, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		dst, err = clientcmdapi.NewConfig(), nil
	}
	if err != nil {
		return fmt.Errorf("kubeconfig: load %s: %w", path, err)
	}
	// Compare users as the source has them: with certificate paths resolved against the file they are in.
	resolved := dst.DeepCopy()
	if err := clientcmd.ResolveLocalPaths(resolved); err != nil {
		return fmt.Errorf("kubeconfig: %s: %w", path, err)
	}
	for name, user := range resolved.AuthInfos {
		if _, ok := cfg.AuthInfos[name]; ok && sameUser(user, cfg.AuthInfos[name]) {
			cfg.AuthInfos[name] = dst.AuthInfos[name] // identical: keep the file's own spelling (relative paths)
		}
	}
	if err := Merge(dst, cfg, setCurrent); err != nil {
		return fmt.Errorf("%w in %s", err, path)
	}
	if err := clientcmd.WriteToFile(*dst, path); err != nil {
		return fmt.Errorf("kubeconfig: write %s: %w", path, err)
	}
	return nil
}

// userOrigin is the file that defines the chosen user, so merging adds no copy of its credentials anywhere else.
func userOrigin(cfg *clientcmdapi.Config, rules *clientcmd.ClientConfigLoadingRules) string {
	for _, user := range cfg.AuthInfos {
		if user.LocationOfOrigin != "" {
			return user.LocationOfOrigin
		}
	}
	return rules.GetDefaultFilename()
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}
