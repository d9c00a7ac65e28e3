package audit

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends r as one line of JSON, exactly the document encoding/json writes for Record (field
// names, order and omitempty) except that <, > and & are not escaped to \u003c etc.
//
// Why our own: encoding/json walks Record by reflection on every request, which was most of the audit
// writer's CPU; the record's shape is fixed, so a direct encoder does the same in a fraction of the time.
// TestAppendRecordMatchesEncodingJSON keeps the two in step.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","auditID":`...)
	b = appendString(b, r.AuditID)
	b = appendOptionalString(b, `,"user":`, r.User)
	b = appendOptionalString(b, `,"uid":`, r.UID)
	b = appendOptionalStrings(b, `,"groups":`, r.Groups)
	b = appendOptionalString(b, `,"impersonatedUser":`, r.ImpersonatedUser)
	b = appendOptionalStrings(b, `,"impersonatedGroups":`, r.ImpersonatedGroup)
	b = appendOptionalStrings(b, `,"tenants":`, r.Tenants)
	b = appendOptionalString(b, `,"verb":`, r.Verb)
	b = appendOptionalString(b, `,"apiGroup":`, r.APIGroup)
	b = appendOptionalString(b, `,"resource":`, r.Resource)
	b = appendOptionalString(b, `,"subresource":`, r.Subresource)
	b = appendOptionalString(b, `,"namespace":`, r.Namespace)
	b = appendOptionalString(b, `,"name":`, r.Name)
	b = appendOptionalString(b, `,"path":`, r.Path)
	b = append(b, `,"decision":`...)
	b = appendString(b, r.Decision)
	b = appendOptionalString(b, `,"module":`, r.Module)
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(r.Code), 10)
	b = append(b, `,"latencySeconds":`...)
	b = appendFloat(b, r.LatencySeconds)
	b = appendOptionalMap(b, `,"annotations":`, r.Annotations)
	return append(b, "}\n"...)
}

// appendOptionalMap writes m with its keys sorted, as encoding/json does.
func appendOptionalMap(b []byte, key string, m map[string]string) []byte {
	if len(m) == 0 {
		return b
	}
	b = append(b, key...)
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

func appendOptionalString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

func appendOptionalStrings(b []byte, key string, list []string) []byte {
	if len(list) == 0 {
		return b
	}
	b = append(b, key...)
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string as encoding/json does: control characters, quote and backslash
// escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloat formats f as encoding/json does for float64 (ES6 number formatting).
func appendFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, '0') // encoding/json would fail; a latency is never either
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
