package runner

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// pullLog feeds a recorded pull stream to the plain (not a terminal) report
// and returns its log lines.
func pullLog(t *testing.T, stream string) ([]map[string]any, error) {
	t.Helper()
	var buf bytes.Buffer
	err := showPull(strings.NewReader(stream), nil, zerolog.New(&buf))
	if strings.ContainsAny(buf.String(), "\r\x1b") {
		t.Errorf("the plain report animates: %q", buf.String())
	}
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, fields)
	}
	return lines, err
}

func recorded(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestPlainPullReportIsOneLinePerLayerAndATotal(t *testing.T) {
	// A real pull from Docker 20.10: one layer already there (a debug line:
	// the closing line counts it), one pulled.
	lines, err := pullLog(t, recorded(t, "pull-new-layer.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3: %v", len(lines), lines)
	}
	if lines[0]["message"] != "layer already on the engine" || lines[0]["layer"] != "495a8bd9fad2" || lines[0]["level"] != "debug" {
		t.Errorf("first line %v", lines[0])
	}
	if lines[1]["message"] != "layer pulled" || lines[1]["layer"] != "fc41f77f3798" || lines[1]["size"] != "300.3kB" {
		t.Errorf("second line %v", lines[1])
	}
	last := lines[2]
	if last["message"] != "pulled the image" || last["size"] != "300.3kB" || last["layers"] != 1.0 || last["layers_present"] != 1.0 || last["took"] == nil {
		t.Errorf("last line %v", last)
	}
}

func TestPlainPullReportOfAnImageUpToDate(t *testing.T) {
	lines, err := pullLog(t, recorded(t, "pull-up-to-date.jsonl"))
	if err != nil || len(lines) != 1 || lines[0]["message"] != "the image is up to date" {
		t.Errorf("got %v, %v; want one line saying the image is up to date", lines, err)
	}
}

func TestPullStreamErrorEndsThePull(t *testing.T) {
	stream := `{"status":"Pulling from team/app","id":"1"}
{"errorDetail":{"message":"received unexpected HTTP status: 503 Service Unavailable"},"error":"received unexpected HTTP status: 503 Service Unavailable"}
`
	lines, err := pullLog(t, stream)
	if err == nil || classifyPullError(err) != pullTransient {
		t.Errorf("got %v, want the 503 as a transient error", err)
	}
	if len(lines) != 0 {
		t.Errorf("a failed pull logged %v", lines)
	}
	if _, err := pullLog(t, `{"status":"Pulling`); err == nil || classifyPullError(err) != pullTransient {
		t.Errorf("a stream cut short: got %v, want a transient error", err)
	}
}
