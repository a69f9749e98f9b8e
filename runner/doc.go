// Package runner runs one build in a sibling container and owns its
// lifecycle: it checks a Config against this host and the engine before
// anything is created (plan), then creates the sibling, writes its passwd
// entry, attaches, starts, waits, stops it on a signal or timeout, drains
// its output, copies its artifacts and removes it (Run). It also reaps the
// siblings of sibling-runs that are gone (Reap, Watch) and keeps the --cache
// volumes (ListCaches, PruneCaches).
//
// runner talks to the engine only through Engine, which the Docker client
// satisfies (Connect returns one) and a fake stands in for in the unit tests
// (runner/internal/fakeengine). The pure leaves live in packages of their own
// under runner/internal: the artifact extractor (extract) and the detection
// of the container sibling-run runs in (selfdetect). cmd/sibling-run is its
// only caller: it parses flags into a Config and maps errors to exit codes
// (ExitError).
package runner
