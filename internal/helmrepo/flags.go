package helmrepo

import "github.com/spf13/pflag"

// AddFlags registers the repository fetch flags on fs. One Fetcher serves every module that fetches
// charts, so these flags are registered once, by whoever builds it (cmd/tenant-proxy).
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.AllowPrivate, "allow-private-repositories", o.AllowPrivate,
		"Allow chart repositories on loopback, private, link-local and other special-purpose addresses (checked on every dialled address).")
	fs.DurationVar(&o.Timeout, "repository-timeout", defaultTimeout, "Time limit of one chart repository fetch (index or chart archive).")
	fs.Int64Var(&o.MaxIndexBytes, "repository-max-index-bytes", defaultMaxIndexBytes, "Largest repository index.yaml accepted, in bytes.")
	fs.Int64Var(&o.MaxChartBytes, "repository-max-chart-bytes", defaultMaxChartBytes, "Largest chart archive accepted, in bytes.")
	fs.DurationVar(&o.IndexTTL, "repository-index-cache-ttl", defaultIndexTTL, "How long a fetched repository index is reused.")
}
