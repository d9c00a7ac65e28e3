package clusterscoped

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// continueToken resumes a list after the last name served, at the resource version of its first page.
type continueToken struct {
	ResourceVersion string `json:"rv"`
	Start           string `json:"start"`
}

func encodeContinue(rv, after string) string {
	b, _ := json.Marshal(continueToken{ResourceVersion: rv, Start: after}) // cannot fail for two strings
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, fmt.Errorf("invalid continue token: %w", err)
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("invalid continue token: %w", err)
	}
	return t, nil
}
