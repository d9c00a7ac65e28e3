package tenants

// Size reports how many Tenants, namespaces and open watches (followers) the index holds, for metrics.
func (ix *Index) Size() (tenants, namespaces, followers int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.tenants), len(ix.namespaces), len(ix.followers)
}
