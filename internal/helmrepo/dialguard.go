package helmrepo

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// blockedPrefixes are special-purpose ranges that netip.Addr's predicates do not cover but that reach hosts
// inside the cluster or the node's network, or embed an IPv4 address that could be private.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, often node or pod networks
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255 broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: maps to any IPv4 address, private ones included
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("2001::/32"),       // Teredo: embeds an IPv4 address
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("ff00::/8"),        // multicast (also caught by IsMulticast)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated addresses (SIIT)
}

// forbiddenAddress reports why addr may not be dialled, or "" when it may.
func forbiddenAddress(addr netip.Addr) string {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid():
		return "invalid"
	case addr.IsLoopback():
		return "loopback"
	case addr.IsPrivate():
		return "private"
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return "link-local"
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return "special-purpose"
		}
	}
	return ""
}

// guardDial is a net.Dialer Control function: it runs after name resolution on the exact address about to be
// connected, so neither DNS rebinding nor a redirect to another host can reach a refused address.
func guardDial(_, address string, _ syscall.RawConn) error {
	hostPort, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q: %v", ErrForbiddenAddress, address, err)
	}
	if why := forbiddenAddress(hostPort.Addr()); why != "" {
		return fmt.Errorf("%w: %s address %s", ErrForbiddenAddress, why, hostPort.Addr())
	}
	return nil
}

// newDialer bounds connection time and, unless private addresses are allowed, guards every dial.
func newDialer(opts Options) *net.Dialer {
	d := &net.Dialer{Timeout: opts.Timeout}
	if !opts.AllowPrivate {
		d.Control = guardDial
	}
	return d
}
