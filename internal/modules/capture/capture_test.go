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
