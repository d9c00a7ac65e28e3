// Package startuppages gives back the executable's pages that only start-up used.
//
// Package initialisation touches code and read-only data of every linked package (about 1,700), and the
// kernel maps file pages in blocks of 64 KiB or more around each fault, so right after start the proxy has
// most of its 80 MB executable resident (about 54 MiB of RssFile) although it runs a small part of it
// afterwards. Dropping those mappings once the proxy is ready leaves the pages in the page cache, where the
// kernel may reclaim them; the pages the proxy still uses fault back in from there on first use.
package startuppages

// Usage is the resident size of the executable's read-only mappings, in bytes.
type Usage struct {
	Resident int64
	Mapped   int64
}
