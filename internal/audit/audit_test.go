package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
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

func TestNilLoggerDiscards(t *testing.T) {
	var l *Logger
	l.Log(&Record{AuditID: "x"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
