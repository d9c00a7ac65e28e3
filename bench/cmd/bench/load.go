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

func newClients(n int, host string, caPEM []byte, creds ...credential) ([]*client, error) {
	clients := make([]*client, n)
	for i := range clients {
		c, err := newClient(host, caPEM, creds[i%len(creds)]) // client i is creds[i mod len]
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
	return c.getAs(ctx, url, "")
}

// getAs is get with an Accept header; empty means application/json.
func (c *client) getAs(ctx context.Context, url, accept string) (time.Duration, error) {
	_, d, err := c.fetch(ctx, url, accept, false)
	return d, err
}

// fetch is getAs that also returns the body if keep is set.
func (c *client) fetch(ctx context.Context, url, accept string, keep bool) ([]byte, time.Duration, error) {
	if accept == "" {
		accept = "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	req.Header.Set("Accept", accept)
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	var body []byte
	if keep {
		body, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	elapsed := time.Since(start)
	if resp.ProtoMajor != 2 {
		return nil, 0, fmt.Errorf("GET %s: answered over %s, want HTTP/2", url, resp.Proto)
	}
	return body, elapsed, nil
}

// load is what one run of runLoad measured.
type load struct {
	latencies []time.Duration
	wall      time.Duration // from the first request sent to the last response read
}

// runLoad has every client GET urls (in turn, as one operation) in a closed loop, back to back, until the
// deadline or, if perClient > 0, until each has made perClient operations. The first failure stops all clients.
func runLoad(ctx context.Context, clients []*client, urls []string, accept string, deadline time.Time, perClient int) (load, error) {
	g, ctx := errgroup.WithContext(ctx)
	latencies := make([][]time.Duration, len(clients))
	start := time.Now()
	for i, c := range clients {
		g.Go(func() error {
			for n := 0; (perClient == 0 || n < perClient) && time.Now().Before(deadline); n++ {
				var total time.Duration
				for _, url := range urls {
					d, err := c.getAs(ctx, url, accept)
					if err != nil {
						return err
					}
					total += d
				}
				latencies[i] = append(latencies[i], total)
			}
			return nil
		})
	}
	err := g.Wait()
	return load{latencies: slices.Concat(latencies...), wall: time.Since(start)}, err
}
