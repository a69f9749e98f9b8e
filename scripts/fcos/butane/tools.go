//go:build tools

// Package butane pins the Butane release whose transpiler the tests use to
// validate build-host.bu: `go build github.com/coreos/butane/internal` in this
// directory builds it from the module proxy (the proxy serves its versions,
// though not the version list that `go run ...@version` asks for).
package butane

import _ "github.com/coreos/butane/internal"
