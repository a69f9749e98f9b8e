package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

var updateFlagPage = flag.Bool("update-flag-page", false, "rewrite docs/flags.md from the flags")

const flagPagePath = "../../docs/flags.md"

// docs/flags.md is made from the flags themselves, so it cannot drift from
// them: this test fails when it differs, and -update-flag-page rewrites it.
func TestFlagPageMatchesTheFlags(t *testing.T) {
	parser, err := newParser(&cli{})
	if err != nil {
		t.Fatal(err)
	}
	want := flagPage(parser)
	if *updateFlagPage {
		if err := os.WriteFile(flagPagePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(flagPagePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/flags.md is not what the flags say; run: go test ./cmd/sibling-run -run TestFlagPage -update-flag-page")
	}
}

// flagPage renders every command's flags as a Markdown table.
func flagPage(parser *kong.Kong) string {
	var b strings.Builder
	b.WriteString(`# Flags and environment variables

Made from the flags themselves by ` + "`go test ./cmd/sibling-run -run TestFlagPage -update-flag-page`" + `;
` + "`sibling-run COMMAND --help`" + ` says the same. Every flag can also be set from the
environment variable shown, each of which sets one flag of one command. A
repeatable flag's variable takes a comma-separated list, except where the flag
says that the variable holds one entry (values that may contain commas: paths,
variables, labels).

The build's environment is exactly: the variables with a ` + "`--pass-env`" + ` prefix,
then ` + "`--env-file`" + ` entries, then ` + "`-e`" + ` entries (a later value wins). Nothing else
of sibling-run's environment leaks in. An ` + "`--env-file`" + ` must be a regular file:
a fifo, socket or device is refused with 125 before anything is read (so
` + "`--env-file <(command)`" + ` does not work; write a file). One inside the working
directory, which a build or the checked-out repository may have made a link,
is opened there and follows only links that stay inside; an administrator's
file elsewhere (` + "`/etc/bamboo-agent/agent.env`" + `) is read as named.

Variables whose names contain ` + "`password`, `passphrase`, `secret` or `sshkey`" + `
(Bamboo's default list), or ` + "`token`" + ` (not in Bamboo's list, but what users
expect: ` + "`bamboo_api_token`" + ` was printed before), in any case, or a word given
with ` + "`--secret-names`" + ` (` + "`SIBLING_RUN_SECRET_NAMES=auth,credential`" + `, as an
administrator extends Bamboo's list), reach the build unchanged but are shown
as ` + "`********`" + ` in everything sibling-run prints. In ` + "`--dry-run`" + `'s environment
every such value is masked; in other text (an engine's error message) only
values of 6 characters or more are replaced, so that a one-character secret
cannot turn "port 5432" into "port ********432", and a warning names each
secret variable whose value is shorter (never the value).

` + "`DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_TLS`, `DOCKER_CERT_PATH`, `DOCKER_API_VERSION` and\n`DOCKER_CONFIG`" + ` are honoured as by the docker CLI (TLS: [remote-engine.md](remote-engine.md)); ` + "`DOCKER_CONTEXT`" + ` is not read.
`)
	for _, node := range allNodes(parser.Model.Node) {
		if node.Hidden || (node.Type == kong.CommandNode && len(node.Flags) == 0) {
			continue
		}
		title := "Global flags"
		if node.Type == kong.CommandNode {
			title = "`sibling-run " + node.Path() + "`: " + strings.TrimSuffix(node.Help, ".")
		}
		fmt.Fprintf(&b, "\n## %s\n\n| flag | environment | default | meaning |\n| --- | --- | --- | --- |\n", title)
		for _, f := range node.Flags {
			if f.Name == "help" {
				continue
			}
			name := "--" + f.Name
			if f.Tag.Negatable != "" {
				name = "--[no-]" + f.Name
			}
			if f.Short != 0 {
				name = fmt.Sprintf("-%c, %s", f.Short, name)
			}
			switch {
			case f.Enum != "":
				name += " " + strings.ReplaceAll(f.Enum, ",", "|")
			case !f.IsBool():
				name += " " + f.FormatPlaceHolder()
			}
			env := ""
			if len(f.Envs) > 0 {
				env = "`" + strings.Join(f.Envs, "`, `") + "`"
			}
			def := ""
			if f.HasDefault && f.Default != "" && f.Default != "false" {
				def = "`" + f.Default + "`"
			}
			help := strings.ReplaceAll(f.Help, "|", `\|`)
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", strings.ReplaceAll(name, "|", `\|`), env, def, help)
		}
	}
	return b.String()
}
