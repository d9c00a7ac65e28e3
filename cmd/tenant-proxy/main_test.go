package main

import "testing"

func TestProxyProcs(t *testing.T) {
	for _, c := range []struct{ available, want int }{
		{1, 1}, {2, 1}, {4, 1}, {7, 1}, {8, 2}, {16, 4}, {64, 16},
	} {
		if got := proxyProcs(c.available); got != c.want {
			t.Errorf("proxyProcs(%d) = %d, want %d", c.available, got, c.want)
		}
	}
}
