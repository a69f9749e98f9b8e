package runner

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

// agentEnviron looks like a Bamboo agent's environment: build variables
// mixed with the agent's own, some of which must never reach a build.
var agentEnviron = []string{
	"PATH=/usr/local/bin:/usr/bin:/bin",
	"HOME=/home/bamboo",
	"bamboo_buildResultKey=PROJ-PLAN-JOB1-42",
	"bamboo_repository_branch_name=main",
	"bamboo_deploy_password=hunter2",
	"bambooX=not a build variable",
	"SIBLING_RUN_IMAGE=alpine:3.20",
	"DOCKER_HOST=unix:///var/run/docker.sock",
	"CI_JOB=7",
	"EMPTY=",
	"TWICE=first",
	"TWICE=second",
}

func TestBuildEnv(t *testing.T) {
	tests := []struct {
		name     string
		environ  []string
		prefixes []string
		files    []string
		flags    []string
		want     []string
	}{
		{
			name:     "bamboo prefix passes only bamboo_ variables, in environ order",
			environ:  agentEnviron,
			prefixes: []string{"bamboo_"},
			want: []string{
				"bamboo_buildResultKey=PROJ-PLAN-JOB1-42",
				"bamboo_repository_branch_name=main",
				"bamboo_deploy_password=hunter2",
			},
		},
		{
			name:     "several prefixes",
			environ:  agentEnviron,
			prefixes: []string{"CI_", "bamboo_repository_"},
			want:     []string{"bamboo_repository_branch_name=main", "CI_JOB=7"},
		},
		{
			name:     "a variable matching two prefixes is passed once",
			environ:  agentEnviron,
			prefixes: []string{"bamboo_", "bamboo_build"},
			want: []string{
				"bamboo_buildResultKey=PROJ-PLAN-JOB1-42",
				"bamboo_repository_branch_name=main",
				"bamboo_deploy_password=hunter2",
			},
		},
		{
			name:     "prefix is case sensitive",
			environ:  agentEnviron,
			prefixes: []string{"BAMBOO_"},
			want:     nil,
		},
		{
			name:     "empty prefix passes nothing",
			environ:  agentEnviron,
			prefixes: []string{""},
			want:     nil,
		},
		{
			name:    "no prefixes pass nothing",
			environ: agentEnviron,
			want:    nil,
		},
		{
			name:     "a name set twice in environ keeps its first place and last value",
			environ:  agentEnviron,
			prefixes: []string{"TWICE"},
			want:     []string{"TWICE=second"},
		},
		{
			name:    "-e NAME copies the value from environ",
			environ: agentEnviron,
			flags:   []string{"HOME", "EMPTY"},
			want:    []string{"HOME=/home/bamboo", "EMPTY="},
		},
		{
			name:    "-e NAME takes the last of duplicate environ entries",
			environ: agentEnviron,
			flags:   []string{"TWICE"},
			want:    []string{"TWICE=second"},
		},
		{
			name:    "-e NAME is left out when NAME is unset",
			environ: agentEnviron,
			flags:   []string{"NOT_SET", "CI_JOB"},
			want:    []string{"CI_JOB=7"},
		},
		{
			name:    "-e values are literal",
			environ: agentEnviron,
			flags:   []string{"OPTS=-Da=b -Dc=d", "SPACED= x ", "BLANK="},
			want:    []string{"OPTS=-Da=b -Dc=d", "SPACED= x ", "BLANK="},
		},
		{
			name:     "pass-env < env-file < -e, each name keeps its first place",
			environ:  agentEnviron,
			prefixes: []string{"bamboo_"},
			files:    []string{"testdata/env/build.env"},
			flags:    []string{"DB_HOST=flag.internal", "bamboo_repository_branch_name=release", "LAST=1"},
			want: []string{
				"bamboo_buildResultKey=PROJ-PLAN-JOB1-42",
				"bamboo_repository_branch_name=release",
				"bamboo_deploy_password=hunter2",
				"DB_HOST=flag.internal",
				"INDENTED=tab before the name",
				"JAVA_OPTS=-Xmx2g -Dfile.encoding=UTF-8",
				`QUOTED="kept with its quotes"`,
				"TRAILING=space after  ",
				"EMPTY=",
				"HOME=/home/bamboo",
				"LAST=1",
			},
		},
		{
			name:    "a later env file wins over an earlier one",
			environ: agentEnviron,
			files:   []string{"testdata/env/build.env", writeEnvFile(t, "DB_HOST=override\nNEW=x\n")},
			want: []string{
				"DB_HOST=override",
				"INDENTED=tab before the name",
				"JAVA_OPTS=-Xmx2g -Dfile.encoding=UTF-8",
				`QUOTED="kept with its quotes"`,
				"TRAILING=space after  ",
				"EMPTY=",
				"HOME=/home/bamboo",
				"NEW=x",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildEnv(tt.environ, tt.prefixes, tt.files, tt.flags, "")
			if err != nil {
				t.Fatalf("buildEnv: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("buildEnv:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestBuildEnvNeverLeaks checks that no variable outside the pass-env
// prefixes, env files and -e flags reaches the build, whatever else the agent has.
func TestBuildEnvNeverLeaks(t *testing.T) {
	got, err := buildEnv(agentEnviron, []string{"bamboo_", ""}, nil, []string{"CI_JOB"}, "")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"CI_JOB": true}
	for _, kv := range got {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "bamboo_") && !allowed[name] {
			t.Errorf("buildEnv passed %q, which no prefix or flag asked for", kv)
		}
	}
}

func TestBuildEnvErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		flags   []string
		wantErr []string // substrings the message must contain
	}{
		{"no name", nil, []string{"=x"}, []string{"-e number 1", "no variable name"}},
		{"empty flag", nil, []string{"OK=1", ""}, []string{"-e number 2", "no variable name"}},
		{"space in name", nil, []string{"MY VAR=1"}, []string{"-e number 1", "white space"}},
		{"leading space", nil, []string{" LEAD=1"}, []string{"white space"}},
		{"tab in bare name", nil, []string{"A\tB"}, []string{"white space"}},
		{"bad env file line", []string{"testdata/env/bad.env"}, nil, []string{"testdata/env/bad.env", "line 4", "white space"}},
		{"missing env file", []string{"testdata/env/does-not-exist.env"}, nil, []string{"does-not-exist.env"}},
		// A bad file stops the build even when the flags are fine.
		{"bad file before good flags", []string{"testdata/env/bad.env"}, []string{"OK=1"}, []string{"line 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildEnv(agentEnviron, []string{"bamboo_"}, tt.files, tt.flags, "")
			if err == nil {
				t.Fatalf("buildEnv = %q, nil; want an error", got)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("buildEnv error = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestParseEnvFile(t *testing.T) {
	lookup := lookupIn([]string{"HOME=/home/bamboo", "EMPTY="})
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"empty", "", nil},
		{"only comments and blank lines", "# a\n\n   \n\t# b\n#c=d\n", nil},
		{"plain", "A=1\nB=2\n", []string{"A=1", "B=2"}},
		{"no final newline", "A=1", []string{"A=1"}},
		{"leading white space is dropped", "  A=1\n\tB=2\n", []string{"A=1", "B=2"}},
		{"value keeps = signs", "URL=http://x/?a=b&c=d\n", []string{"URL=http://x/?a=b&c=d"}},
		{"value keeps spaces", "MSG= hello  world \n", []string{"MSG= hello  world "}},
		{"value keeps quotes and #", `Q="a # b"` + "\n", []string{`Q="a # b"`}},
		{"empty value", "E=\n", []string{"E="}},
		{"bare name copies the value", "HOME\nEMPTY\n", []string{"HOME=/home/bamboo", "EMPTY="}},
		{"bare unset name is left out", "UNSET\nA=1\n", []string{"A=1"}},
		{"duplicates are all returned", "A=1\nA=2\n", []string{"A=1", "A=2"}},
		// A file written on Windows must not put \r into values.
		{"CRLF line ends", "A=1\r\nB=two words\r\n", []string{"A=1", "B=two words"}},
		// Windows editors may start the file with a byte-order mark.
		{"byte-order mark", "\ufeffFOO=bar\n", []string{"FOO=bar"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEnvFile(strings.NewReader(tt.input), "test.env", lookup)
			if err != nil {
				t.Fatalf("parseEnvFile(%q): %v", tt.input, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseEnvFile(%q):\n got %q\nwant %q", tt.input, got, tt.want)
			}
		})
	}
}

func TestParseEnvFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{"no name", "=x\n", "env file ci.env, line 1: no variable name"},
		{"no name after comments", "# c\n\nA=1\n=x\n", "env file ci.env, line 4: no variable name"},
		{"space in name", "A=1\nMY VAR=1\n", "env file ci.env, line 2: the variable name contains white space"},
		{"space before =", "NAME =1\n", "env file ci.env, line 1: the variable name contains white space"},
		{"bare name with inner space", "A B\n", "env file ci.env, line 1: the variable name contains white space"},
		{"NUL in a value", "A=1\nMY_PASSWORD=TOP\x00S3CR\n", "env file ci.env, line 2: the value of MY_PASSWORD contains a NUL byte"},
		{"NUL in name", "A\x00B=1\n", "is not valid text"},
		{"invalid UTF-8 in name", "\xff=2\n", "is not valid text"},
		{"line too long", "A=" + strings.Repeat("x", 2<<20) + "\n", "reading env file ci.env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEnvFile(strings.NewReader(tt.input), "ci.env", lookupIn(nil))
			if err == nil {
				t.Fatalf("parseEnvFile = %q, nil; want error %q", got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseEnvFile error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadEnvFile(t *testing.T) {
	got, err := readEnvFile("testdata/env/build.env", "", lookupIn(agentEnviron))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"DB_HOST=db.internal",
		"INDENTED=tab before the name",
		"JAVA_OPTS=-Xmx2g -Dfile.encoding=UTF-8",
		`QUOTED="kept with its quotes"`,
		"TRAILING=space after  ",
		"EMPTY=",
		"HOME=/home/bamboo",
		"DB_HOST=db2.internal",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readEnvFile(build.env):\n got %q\nwant %q", got, want)
	}
}

func TestReadEnvFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.env")
	got, err := readEnvFile(path, "", lookupIn(nil))
	if err == nil {
		t.Fatalf("readEnvFile(%s) = %q, nil; want an error", path, got)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readEnvFile(%s) error = %v, want one that wraps fs.ErrNotExist", path, err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("readEnvFile(%s) error = %q, want it to name the file", path, err)
	}
}

func writeEnvFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "extra.env")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add(readFixture(f, "env/build.env"))
	f.Add("A=1\r\n  B\n#C=3\n=x\n")
	f.Add("\ufeffA=1\nB C=2\n")
	f.Add("\x00=\x00\n\u2028X=1\n")
	lookup := lookupIn([]string{"HOME=/home/bamboo", "EMPTY=", "B=from environ"})
	f.Fuzz(func(t *testing.T, input string) {
		entries, err := parseEnvFile(strings.NewReader(input), "fuzz.env", lookup)
		if err != nil {
			if entries != nil {
				t.Errorf("parseEnvFile(%q) = %q with error %v, want no entries", input, entries, err)
			}
			return
		}
		for _, kv := range entries {
			name, _, ok := strings.Cut(kv, "=")
			if !ok {
				t.Errorf("parseEnvFile(%q) returned %q, which has no =", input, kv)
			}
			if name == "" {
				t.Errorf("parseEnvFile(%q) returned %q, which has no name", input, kv)
			}
			if strings.IndexFunc(name, unicode.IsSpace) >= 0 {
				t.Errorf("parseEnvFile(%q) returned %q, whose name has white space", input, kv)
			}
		}
	})
}

// Errors about variables never print a value, whichever way the entry is
// malformed: only a position, or the name once it is known to be one.
func TestEnvErrorsNeverPrintValues(t *testing.T) {
	const secret = "TOPS3CR"
	for _, tc := range []struct {
		name         string
		flags, files []string
		environ      []string
	}{
		{"space instead of =", []string{"MY_PASSWORD " + secret}, nil, nil},
		{"value first", []string{secret + " MY_PASSWORD"}, nil, nil},
		{"space before =", []string{"MY_PASSWORD =" + secret}, nil, nil},
		{"invalid text", []string{"MY_PASSWORD\xff" + secret}, nil, nil},
		{"NUL in a -e value", []string{"MY_PASSWORD=" + secret + "\x00"}, nil, nil},
		{"NUL in a passed value", []string{"MY_PASSWORD"}, nil, []string{"MY_PASSWORD=" + secret + "\x00"}},
		{"NUL in an env file", nil, []string{"testdata/env/nul-secret.env"}, nil},
		{"space in an env file", nil, []string{"testdata/env/space-secret.env"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildEnv(tc.environ, nil, tc.files, tc.flags, "")
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error prints the value: %v", err)
			}
		})
	}
}

func TestHideSecretValuesMasksTheEnginesWords(t *testing.T) {
	env := []string{"MY_PASSWORD=TOP\nS3CR", "api_secret=k3y-long", "PLAIN=visible", "EMPTY_SECRET=", "SHORT_SECRET=5"}
	cause := &ExitError{Code: 125, Err: errors.New("engine: bad \"MY_PASSWORD=TOP\\nS3CR\" or TOP\nS3CR, k3y-long, visible, port 5432")}
	secrets := newSecretNames(nil)
	err := secrets.hide(cause, env)
	if got, want := err.Error(), `engine: bad "MY_PASSWORD=********" or ********, ********, visible, port 5432`; got != want {
		t.Errorf("masked %q, want %q", got, want)
	}
	var coded *ExitError
	if !errors.As(err, &coded) || coded.Code != 125 {
		t.Errorf("the masked error lost its exit code: %v", err)
	}
	plain := errors.New("nothing secret")
	if secrets.hide(plain, env) != plain || secrets.hide(nil, env) != nil {
		t.Error("an error without secrets should come back as it was")
	}
}

func readFixture(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
