package runner

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// buildEnv assembles the build's environment. Variables of sibling-run's own
// environment whose names start with one of passPrefixes come first, then the
// env files in order, then the -e entries; a later value for a name wins.
// Nothing else from environ reaches the build. Env files in workdir are read
// as openEnvFile says.
func buildEnv(environ, passPrefixes, envFiles, envFlags []string, workdir string) ([]string, error) {
	lookup := lookupIn(environ)
	var env orderedEnv
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		for _, prefix := range passPrefixes {
			if prefix != "" && strings.HasPrefix(name, prefix) {
				env.set(kv)
				break
			}
		}
	}
	for _, path := range envFiles {
		entries, err := readEnvFile(path, workdir, lookup)
		if err != nil {
			return nil, err
		}
		env.set(entries...)
	}
	for i, flag := range envFlags {
		kv, ok, err := parseEnvEntry(flag, lookup)
		if err != nil {
			// The entry itself is not shown: its value may be a secret, and
			// a malformed entry has no name that tells.
			return nil, fmt.Errorf("-e number %d: %w", i+1, err)
		}
		if ok {
			env.set(kv)
		}
	}
	return env.list, nil
}

// parseEnvEntry turns "NAME=VALUE" into itself and "NAME" into NAME's value in
// sibling-run's environment; ok is false when NAME is not set there, so the
// build does not get it either (as with docker run -e NAME). Its errors never
// quote the entry, which may hold a secret; they name a variable only once
// its name is known to be one.
func parseEnvEntry(entry string, lookup func(string) (string, bool)) (kv string, ok bool, err error) {
	name, value, hasValue := strings.Cut(entry, "=")
	if name == "" {
		return "", false, fmt.Errorf("no variable name; use NAME=VALUE or NAME")
	}
	if i := strings.IndexFunc(name, unicode.IsSpace); i >= 0 {
		return "", false, fmt.Errorf("the variable name contains white space; use NAME=VALUE, with no space before the =")
	}
	if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return "", false, fmt.Errorf("the variable name is not valid text; use NAME=VALUE")
	}
	if !hasValue {
		value, ok = lookup(name)
		if !ok {
			return "", false, nil
		}
	}
	// The engine would refuse it only when the build starts, quoting it.
	if strings.ContainsRune(value, 0) {
		return "", false, fmt.Errorf("the value of %s contains a NUL byte, which no process can be given", name)
	}
	return name + "=" + value, true, nil
}

// readEnvFile reads a docker-style env file: one NAME=VALUE or NAME per line,
// blank lines and lines starting with # ignored, values taken literally.
func readEnvFile(path, workdir string, lookup func(string) (string, bool)) ([]string, error) {
	f, err := openEnvFile(path, workdir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseEnvFile(f, path, lookup)
}

func parseEnvFile(r io.Reader, path string, lookup func(string) (string, bool)) ([]string, error) {
	var entries []string
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // a byte-order mark from a Windows editor
		}
		line = strings.TrimLeftFunc(line, unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kv, ok, err := parseEnvEntry(line, lookup)
		if err != nil {
			return nil, fmt.Errorf("env file %s, line %d: %w", path, n, err)
		}
		if ok {
			entries = append(entries, kv)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading env file %s: %w", path, err)
	}
	return entries, nil
}

func lookupIn(environ []string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for i := len(environ) - 1; i >= 0; i-- {
			if k, v, _ := strings.Cut(environ[i], "="); k == name {
				return v, true
			}
		}
		return "", false
	}
}

// orderedEnv is a NAME=VALUE list in first-set order where a later value for a
// name replaces the earlier one in place.
type orderedEnv struct {
	list  []string
	index map[string]int
}

func (e *orderedEnv) set(kvs ...string) {
	if e.index == nil {
		e.index = map[string]int{}
	}
	for _, kv := range kvs {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := e.index[name]; ok {
			e.list[i] = kv
			continue
		}
		e.index[name] = len(e.list)
		e.list = append(e.list, kv)
	}
}
