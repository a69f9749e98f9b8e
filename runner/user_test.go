package runner

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestParseUserFlag(t *testing.T) {
	name := func(uid int) string { return "agent" }
	for _, tc := range []struct {
		flag     string
		want     buildUser
		mentions string // a word of the error; "" for none
	}{
		{"image", buildUser{Spec: "", UID: -1, GID: -1}, ""},
		{"4242", buildUser{Spec: "4242", UID: 4242, GID: -1, Name: "agent"}, ""},
		{"4242:4343", buildUser{Spec: "4242:4343", UID: 4242, GID: 4343, Name: "agent"}, ""},
		{"0:0", buildUser{Spec: "0:0", UID: 0, GID: 0, Name: "agent"}, ""},
		{"nobody", buildUser{Spec: "nobody", UID: -1, GID: -1, Name: "nobody"}, ""},
		{"builder:staff", buildUser{Spec: "builder:staff", UID: -1, GID: -1, Name: "builder"}, ""},
		{"4242:staff", buildUser{Spec: "4242:staff", UID: 4242, GID: -1, Name: "agent"}, ""},
		{"builder:50", buildUser{Spec: "builder:50", UID: -1, GID: 50, Name: "builder"}, ""},
		{"1:2:3", buildUser{}, "not a user"},
		{":5", buildUser{}, "not a user"},
		{"5:", buildUser{}, "not a user"},
		{"99999999999", buildUser{}, "out of range"},
		{"1:99999999999", buildUser{}, "out of range"},
		{"bad name", buildUser{}, "neither"},
		{"-1", buildUser{}, "neither"},
	} {
		got, err := parseUserFlag(tc.flag, name)
		if tc.mentions != "" {
			if err == nil || !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("parseUserFlag(%q) = %+v, %v; want an error saying %q", tc.flag, got, err, tc.mentions)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseUserFlag(%q) = %+v, %v; want %+v", tc.flag, got, err, tc.want)
		}
	}
}

func TestPasswdWithAddsOnlyAMissingUID(t *testing.T) {
	image := []byte("root:x:0:0:root:/root:/bin/sh\nbroken line\nbuild:x:1000:1000::/home/build:/bin/sh")
	u := buildUser{UID: 4242, GID: 4343, Name: "build"}

	got, home, found := passwdWith(image, u)
	if found || home != "/home/4242" {
		t.Errorf("found %v, home %q; want a new entry whose home does not take build's", found, home)
	}
	want := string(image) + "\nbuild:x:4242:4343:build:/home/4242:/bin/sh\n"
	if string(got) != want {
		t.Errorf("passwd:\n%s\nwant:\n%s", got, want)
	}

	again, home, found := passwdWith(got, u)
	if !found || home != "/home/4242" || string(again) != string(got) {
		t.Errorf("a known uid must leave passwd alone: found %v, home %q", found, home)
	}

	fresh, home, _ := passwdWith(nil, buildUser{UID: 7, GID: -1, Name: "ci"})
	if string(fresh) != "root:x:0:0:root:/root:/bin/sh\nci:x:7:0:ci:/home/ci:/bin/sh\n" || home != "/home/ci" {
		t.Errorf("an image without passwd gets root and the build's user, gid 0 as the engine gives; got %q, home %q", fresh, home)
	}
}

func TestParsePasswdSkipsWhatItCannotRead(t *testing.T) {
	got := parsePasswd([]byte("root:x:0:0:root:/root:/bin/sh\n#comment\nx:x:notanumber:0::/:/bin/sh\nshort:x:1\nci:x:7:7::/home/ci:/bin/sh\n"))
	if len(got) != 2 || got[0] != (passwdEntry{Name: "root", UID: 0, Home: "/root"}) || got[1] != (passwdEntry{Name: "ci", UID: 7, Home: "/home/ci"}) {
		t.Errorf("parsePasswd = %+v", got)
	}
}

func TestWithUserEnvKeepsTheUsersOwn(t *testing.T) {
	u := buildUser{Name: "build"}
	if got := withUserEnv([]string{"A=1"}, u); strings.Join(got, " ") != "A=1 USER=build" {
		t.Errorf("got %v", got)
	}
	if got := withUserEnv([]string{"USER=mine"}, u); strings.Join(got, " ") != "USER=mine" {
		t.Errorf("a USER set with -e must win: %v", got)
	}
	if got := withUserEnv([]string{"A=1"}, buildUser{}); strings.Join(got, " ") != "A=1" {
		t.Errorf("the image's user gets no USER: %v", got)
	}
}

func TestResolveUserDefaultsToTheWorkdirOwner(t *testing.T) {
	dir := t.TempDir()
	got, err := resolveUser("", dir)
	uid, gid := os.Getuid(), os.Getgid()
	if err != nil || got.UID != uid || got.GID != gid || got.Spec != fmt.Sprintf("%d:%d", uid, gid) || got.Name != agentName(uid) {
		t.Errorf("resolveUser = %+v, %v; want the directory's owner %d:%d", got, err, uid, gid)
	}
}
