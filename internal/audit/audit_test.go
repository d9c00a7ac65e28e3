package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoggerWritesEveryRecordOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 5000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Log(&Record{AuditID: fmt.Sprint(i), Decision: Forwarded})
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var r Record
		if err := json.Unmarshal(scanner.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", scanner.Text(), err)
		}
		if seen[r.AuditID] {
			t.Fatalf("record %s written twice", r.AuditID)
		}
		seen[r.AuditID] = true
	}
	if len(seen) != 5000 {
		t.Fatalf("%d records written, want 5000", len(seen))
	}
}

// A record reaches the file within about flushDelay while the proxy keeps running, not only at Close.
func TestLoggerWritesSoonWithoutClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	for _, id := range []string{"first", "second"} { // the second after the writer has gone back to waiting
		start := time.Now()
		l.Log(&Record{AuditID: id, Decision: Forwarded})
		for {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), `"auditID":"`+id+`"`) {
				break
			}
			if time.Since(start) > 20*flushDelay {
				t.Fatalf("record %s not written after %v", id, time.Since(start))
			}
			time.Sleep(flushDelay / 5)
		}
	}
}

func TestNilLoggerDiscards(t *testing.T) {
	var l *Logger
	l.Log(&Record{AuditID: "x"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
