package capture

import (
	"net/http"
	"testing"
)

func TestRecorder(t *testing.T) {
	tests := []struct {
		name         string
		write        func(*Recorder)
		wantCode     int
		wantBody     string
		wantOverflow bool
	}{
		{"body only", func(r *Recorder) { _, _ = r.Write([]byte("ok")) }, http.StatusOK, "ok", false},
		{"status then body", func(r *Recorder) { r.WriteHeader(http.StatusForbidden); _, _ = r.Write([]byte("no")) }, http.StatusForbidden, "no", false},
		{"first status wins", func(r *Recorder) { r.WriteHeader(http.StatusCreated); r.WriteHeader(http.StatusOK) }, http.StatusCreated, "", false},
		{"over the limit", func(r *Recorder) { _, _ = r.Write([]byte("0123456789abc")) }, http.StatusOK, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(10)
			tt.write(r)
			if r.Code() != tt.wantCode || string(r.Body()) != tt.wantBody || r.Overflow() != tt.wantOverflow {
				t.Fatalf("code %d body %q overflow %v; want %d %q %v", r.Code(), r.Body(), r.Overflow(), tt.wantCode, tt.wantBody, tt.wantOverflow)
			}
		})
	}
}

func TestSharedBudget(t *testing.T) {
	tests := []struct {
		name          string
		writes        [2][]string // per recorder, in turn: first's [0], second's [0], first's [1], ...
		wantOverflows [2]bool
		wantBodies    [2]string
	}{
		{"both fit", [2][]string{{"01234"}, {"56789"}}, [2]bool{false, false}, [2]string{"01234", "56789"}},
		{"second overflows", [2][]string{{"012345"}, {"6789ab"}}, [2]bool{false, true}, [2]string{"012345", ""}},
		{"a refused write takes nothing", [2][]string{{"0123456789a"}, {"0123456789"}}, [2]bool{true, false}, [2]string{"", "0123456789"}},
		{"a later write overflows", [2][]string{{"0123", "456789abc"}, {"defghi"}}, [2]bool{true, false}, [2]string{"0123", "defghi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			budget := NewBudget(10)
			recs := [2]*Recorder{NewShared(budget), NewShared(budget)}
			for i := 0; i < 2; i++ {
				for j := range recs {
					if i < len(tt.writes[j]) {
						_, _ = recs[j].Write([]byte(tt.writes[j][i]))
					}
				}
			}
			for j, rec := range recs {
				if rec.Overflow() != tt.wantOverflows[j] || string(rec.Body()) != tt.wantBodies[j] {
					t.Errorf("recorder %d: body %q overflow %v; want %q %v", j, rec.Body(), rec.Overflow(), tt.wantBodies[j], tt.wantOverflows[j])
				}
			}
		})
	}
}
