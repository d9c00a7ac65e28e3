//go:build tools

// Package tools pins the Capsule controller for the local test cluster.
package tools

import _ "github.com/projectcapsule/capsule/cmd/controller"
