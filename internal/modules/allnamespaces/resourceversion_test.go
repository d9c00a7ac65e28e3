package allnamespaces

import (
	"net/url"
	"slices"
	"testing"
)

func TestProgress(t *testing.T) {
	// step: namespace i relays an event or takes a bookmark at rv; want is the bookmark the client gets then
	// (0: none).
	type step struct {
		i        int
		bookmark bool
		rv       string
		want     uint64
	}
	tests := []struct {
		name  string
		n     int
		from  string
		steps []step
	}{
		{"an event past a namespace that has not got there moves the client back", 2, "10", []step{
			{0, false, "12", 10}, // b may still have events in 11..12
			{1, false, "11", 0},  // the client resumes from 11, which both namespaces have reached
		}},
		{"a bookmark of the slowest namespace advances the safe point", 2, "10", []step{
			{0, false, "12", 10},
			{1, true, "15", 12},
			{0, true, "20", 15},
			{1, true, "16", 16},
		}},
		{"an event at or below the safe point needs no bookmark", 2, "10", []step{
			{0, false, "10", 0},
			{0, true, "20", 0},
			{1, true, "30", 20},
			{1, false, "31", 20}, // a has reached only 20
		}},
		{"one namespace: every event is safe", 1, "10", []step{
			{0, false, "11", 0},
			{0, false, "12", 0},
			{0, true, "13", 13},
		}},
		{"from the current state, unknown until every namespace bookmarked", 2, "", []step{
			{0, false, "3", 0},
			{1, false, "7", 0},
			{0, true, "20", 0},
			{1, true, "21", 20},
		}},
		{"an event without a resource version", 1, "10", []step{
			{0, false, "", 10},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProgress(tt.n, tt.from)
			for k, s := range tt.steps {
				if s.bookmark {
					p.bookmark(s.i, s.rv)
				} else {
					p.event(s.i, s.rv)
				}
				got, due := p.bookmarkDue(s.bookmark)
				if !due {
					got = 0
				}
				if got != s.want {
					t.Fatalf("step %d (%+v): bookmark %d, want %d", k, s, got, s.want)
				}
			}
		})
	}
}

func TestAtResourceVersion(t *testing.T) {
	q := url.Values{"labelSelector": {"app=web"}, "resourceVersion": {"0"}, "resourceVersionMatch": {"NotOlderThan"}}
	got, err := url.ParseQuery(atResourceVersion(q, "42"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Get("resourceVersion") != "42" || got.Get("resourceVersionMatch") != "Exact" || got.Get("labelSelector") != "app=web" {
		t.Errorf("query %v", got)
	}
	if q.Get("resourceVersion") != "0" {
		t.Error("atResourceVersion changed its argument")
	}
	if !slices.Equal([]string{listResourceVersion([]byte(`{"metadata":{"resourceVersion":"7"}}`)), listResourceVersion([]byte(`{`))}, []string{"7", ""}) {
		t.Error("listResourceVersion")
	}
}
