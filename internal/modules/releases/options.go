package releases

import (
	"time"

	"github.com/spf13/pflag"
)

// Options are the release API's flags.
type Options struct {
	// DisableAuth skips the authorisation pre-check; the API server still judges every call as the caller.
	DisableAuth bool
	// ListMax caps the releases one list answers.
	ListMax int
	// Timeout is Helm's --timeout: how long hooks and CRD establishment are waited for.
	Timeout time.Duration
	// OperationTimeout bounds one whole API call (chart fetch, checks and the Helm action).
	OperationTimeout time.Duration
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{ListMax: 256, Timeout: 5 * time.Minute, OperationTimeout: 10 * time.Minute}
}

// AddFlags registers the release API's flags on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.DisableAuth, "disable-auth", o.DisableAuth, "Release API: skip the check that the caller may do everything an install, upgrade, rollback or delete needs before it starts. The API server still authorises every call as the caller.")
	fs.IntVar(&o.ListMax, "list-max", o.ListMax, "Release API: most releases one list answers.")
	fs.DurationVar(&o.Timeout, "helm-timeout", o.Timeout, "Release API: how long Helm waits for hooks and CRDs (Helm's --timeout).")
	fs.DurationVar(&o.OperationTimeout, "helm-operation-timeout", o.OperationTimeout, "Release API: time limit of one whole release operation.")
}
