package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
)

// credential is how a benchmark caller authenticates: a client certificate or a bearer token.
type credential struct {
	certPEM, keyPEM []byte
	token           string
}

// client is one simulated caller with its own connection, built the way client-go builds kubectl's:
// TLS and HTTP/2 from utilnet.SetTransportDefaults, bearer token and User-Agent from client-go's wrappers.
// Requests are raw GETs so the client spends no CPU on decoding, which would compete with the servers for
// the same cores.
type client struct {
	http      *http.Client
	transport *http.Transport
}

func newClient(host string, caPEM []byte, cred credential) (*client, error) {
	cfg := restConfig(host, caPEM, cred)
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client TLS config: %w", err)
	}
	// A transport of our own rather than rest.TransportFor, whose cache would give every client of the same
	// credential one shared connection.
	transport := utilnet.SetTransportDefaults(&http.Transport{TLSClientConfig: tlsConfig})
	rt, err := rest.HTTPWrappersForConfig(cfg, transport)
	if err != nil {
		return nil, fmt.Errorf("client wrappers: %w", err)
	}
	return &client{http: &http.Client{Transport: rt, Timeout: 30 * time.Second}, transport: transport}, nil
}

func newClients(n int, host string, caPEM []byte, cred credential) ([]*client, error) {
	clients := make([]*client, n)
	for i := range clients {
		c, err := newClient(host, caPEM, cred)
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}
	return clients, nil
}

func closeClients(clients []*client) {
	for _, c := range clients {
		if c != nil {
			c.transport.CloseIdleConnections()
		}
	}
}

// get fetches url and returns how long the whole response took. Anything but an HTTP/2 200 is an error:
// a benchmark of failing requests or of the wrong protocol would measure the wrong thing.
func (c *client) get(ctx context.Context, url string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	elapsed := time.Since(start)
	if resp.ProtoMajor != 2 {
		return 0, fmt.Errorf("GET %s: answered over %s, want HTTP/2", url, resp.Proto)
	}
	return elapsed, nil
}

// load is what one run of runLoad measured.
type load struct {
	latencies []time.Duration
	wall      time.Duration // from the first request sent to the last response read
}

// runLoad has every client GET url in a closed loop, back to back, until the deadline or, if perClient > 0,
// until each has made perClient requests. The first failure stops all clients.
func runLoad(ctx context.Context, clients []*client, url string, deadline time.Time, perClient int) (load, error) {
	g, ctx := errgroup.WithContext(ctx)
	latencies := make([][]time.Duration, len(clients))
	start := time.Now()
	for i, c := range clients {
		g.Go(func() error {
			for n := 0; (perClient == 0 || n < perClient) && time.Now().Before(deadline); n++ {
				d, err := c.get(ctx, url)
				if err != nil {
					return err
				}
				latencies[i] = append(latencies[i], d)
			}
			return nil
		})
	}
	err := g.Wait()
	return load{latencies: slices.Concat(latencies...), wall: time.Since(start)}, err
}
