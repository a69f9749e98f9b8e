package main

import (
	"reflect"
	"strings"
	"testing"

	"sibling-run/runner"
)

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		value  string
		zeroOK bool
		want   int64
	}{
		{"", false, 0},
		{"512m", false, 512 << 20},
		{"2g", false, 2 << 30},
		{"2G", false, 2 << 30},
		{"1.5g", false, 3 << 29},
		{"512mb", false, 512 << 20},
		{"1048576", false, 1 << 20},
		{"0", true, 0},
	} {
		if got, err := parseSize("--memory", tt.value, tt.zeroOK, "512m"); err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.value, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		value  string
		zeroOK bool
	}{
		{"12q", true}, {"-1", true}, {"-1m", true}, {" 1g", true}, {"g", true}, {"lots", true}, {"0", false},
	} {
		_, err := parseSize("--shm-size", tt.value, tt.zeroOK, "64m or 1g")
		if err == nil || !strings.Contains(err.Error(), `--shm-size "`+tt.value+`" is not a size`) || !strings.Contains(err.Error(), "64m or 1g") {
			t.Errorf("parseSize(%q, zeroOK %v): err = %v, want one naming the flag, the value and an example", tt.value, tt.zeroOK, err)
		}
	}
}

func TestParseLabels(t *testing.T) {
	got, err := parseLabels([]string{"team=platform", "flaky", "expr=a=b", "stage=1", "stage=2", "sibling-run.mine=x"})
	// The reserved prefix is the runner's to refuse (checkLabels), since
	// reaping trusts those labels whoever builds the Config.
	want := map[string]string{"team": "platform", "flaky": "", "expr": "a=b", "stage": "2", "sibling-run.mine": "x"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"=x", ""} {
		if _, err := parseLabels([]string{"ok=1", bad}); err == nil || !strings.Contains(err.Error(), `--label "`+bad+`" has no key`) {
			t.Errorf("--label %q: err = %v, want one saying it has no key", bad, err)
		}
	}
}

func TestParseLabelFilters(t *testing.T) {
	got, err := parseLabelFilters([]string{"team=a", "flaky", "k=", "url=a=b"})
	want := []runner.LabelFilter{{Key: "team", Value: "a"}, {Key: "flaky", AnyValue: true}, {Key: "k"}, {Key: "url", Value: "a=b"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"=x", ""} {
		if _, err := parseLabelFilters([]string{"ok", bad}); err == nil || !strings.Contains(err.Error(), `--label "`+bad+`" has no key`) {
			t.Errorf("--label %q: err = %v, want one saying it has no key", bad, err)
		}
	}
}

func TestParseTmpfs(t *testing.T) {
	got, err := parseTmpfs([]string{"/tmp", "/run/cache:size=64m,noexec", "/var/x/"})
	want := []runner.TmpfsSpec{{Path: "/tmp"}, {Path: "/run/cache", Options: "size=64m,noexec"}, {Path: "/var/x"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"tmp", ":size=1m", "/", "/..", ""} {
		if _, err := parseTmpfs([]string{bad}); err == nil || !strings.Contains(err.Error(), `--tmpfs "`+bad+`"`) {
			t.Errorf("--tmpfs %q: err = %v, want a refusal naming it", bad, err)
		}
	}
}

func TestServiceAlias(t *testing.T) {
	for _, tt := range []struct{ image, want string }{
		{"postgres", "postgres"},
		{"library/postgres:15", "postgres"},
		{"registry.example.com:5000/team/redis:7-alpine", "redis"},
		{"mysql@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "mysql"},
		{"team/My_Queue:1", "my-queue"},
		{"org/selenium.standalone-chrome", "selenium-standalone-chrome"},
		{"___", ""},
		{"a/" + strings.Repeat("x", 70), strings.Repeat("x", 63)},
	} {
		if got := serviceAlias(tt.image); got != tt.want {
			t.Errorf("serviceAlias(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}

func FuzzServiceAlias(f *testing.F) {
	for _, seed := range []string{"library/postgres:15", "a/b@sha256:00", "-x-", "Ünïcode/ÄB"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, image string) {
		if alias := serviceAlias(image); alias != "" && !dnsLabel.MatchString(alias) {
			t.Errorf("serviceAlias(%q) = %q, not a DNS label", image, alias)
		}
	})
}

func TestParseServices(t *testing.T) {
	for _, tt := range []struct {
		name    string
		entries []string
		want    []runner.ServiceSpec
		wantErr string
	}{
		{name: "none", want: nil},
		{name: "derived and given aliases", entries: []string{"library/postgres:15", "redis:7=cache", "web=Front"},
			want: []runner.ServiceSpec{{Image: "library/postgres:15", Alias: "postgres"}, {Image: "redis:7", Alias: "cache"}, {Image: "web", Alias: "front"}}},
		{name: "duplicate derived", entries: []string{"a/web:1", "b/web:2"}, wantErr: "both have the alias web"},
		{name: "duplicate given", entries: []string{"x=db", "y=DB"}, wantErr: "both have the alias db"},
		{name: "alias not a DNS label", entries: []string{"web=under_score"}, wantErr: "not a DNS label"},
		{name: "empty alias", entries: []string{"web="}, wantErr: "not a DNS label"},
		{name: "no image", entries: []string{"=web"}, wantErr: "names no image"},
		{name: "no alias derivable", entries: []string{"___"}, wantErr: "IMAGE=ALIAS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServices(tt.entries)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--service") {
					t.Fatalf("err = %v, want one naming --service and saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseArtifacts(t *testing.T) {
	got, err := parseArtifacts([]string{"/out/reports", "/out/x.xml:build/", "/a//b/../c:/abs/dest", "/d:"})
	want := []runner.ArtifactSpec{{Src: "/out/reports"}, {Src: "/out/x.xml", Dest: "build/"}, {Src: "/a/c", Dest: "/abs/dest"}, {Src: "/d"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v;\nwant %+v", got, err, want)
	}
	for _, tt := range []struct{ entry, says string }{
		{"out/report.xml", "must be absolute"},
		{"", "must be absolute"},
		{":dest", "must be absolute"},
		{"/", "whole filesystem"},
		{"/..:x", "whole filesystem"},
		{"/out\x00x", "NUL byte"},
		{"/out:de\x00st", "NUL byte"},
	} {
		_, err := parseArtifacts([]string{"/fine", tt.entry})
		if err == nil || !strings.Contains(err.Error(), tt.says) || !strings.HasPrefix(err.Error(), "--artifact ") {
			t.Errorf("--artifact %q: err = %v, want one naming --artifact and saying %q", tt.entry, err, tt.says)
		}
	}
}
