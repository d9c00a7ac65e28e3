package namespaces

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// continueToken is the opaque position of a paginated list: the name after which the next page starts, and
// the resource version the first page reported, which later pages report too so that a watch from it
// replays everything that changed during the pagination.
type continueToken struct {
	Version         string `json:"v"`
	ResourceVersion uint64 `json:"rv"`
	Start           string `json:"start"`
}

const continueVersion = "tenant-proxy/namespaces/v1"

func encodeContinue(rv uint64, after string) string {
	data, _ := json.Marshal(continueToken{Version: continueVersion, ResourceVersion: rv, Start: after})
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeContinue(token string) (continueToken, error) {
	var t continueToken
	data, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return t, fmt.Errorf("continue key is not valid: %w", err)
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return t, fmt.Errorf("continue key is not valid: %w", err)
	}
	if t.Version != continueVersion || t.Start == "" {
		return t, errors.New("continue key is not valid: unknown format")
	}
	return t, nil
}
