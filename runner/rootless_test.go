package runner

import (
	"os"
	"strings"
	"testing"
)

// The user namespace of rootless Podman 4.3 on this machine, as its libpod
// info call answers: uid 1001 is root inside, 100000 and up are 1 and up.
func rootlessFixture(t *testing.T) engineUserns {
	t.Helper()
	f, err := os.Open("testdata/libpod-info/rootless-podman-4.3.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ns, err := parseLibpodInfo(f)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestParseLibpodInfo(t *testing.T) {
	ns := rootlessFixture(t)
	if !ns.Rootless || len(ns.UIDs) != 2 || len(ns.GIDs) != 2 || ns.UIDs[0] != (idRange{0, 1001, 1}) || ns.UIDs[1] != (idRange{1, 100000, 65536}) {
		t.Errorf("parseLibpodInfo = %+v", ns)
	}
	rootful, err := parseLibpodInfo(strings.NewReader(`{"host":{"security":{"rootless":false},"idMappings":{}}}`))
	if err != nil || rootful.Rootless {
		t.Errorf("rootful: parseLibpodInfo = %+v, %v; want not rootless", rootful, err)
	}
	if _, err := parseLibpodInfo(strings.NewReader(`404 page not found`)); err == nil {
		t.Error("parseLibpodInfo took a non-JSON answer")
	}
}

// Issue 24: under rootless Podman the build ran as the directory's host uid,
// which inside is another user, and could not write its working directory.
func TestInEngineUserns(t *testing.T) {
	ns := rootlessFixture(t)
	owner := func(uid, gid int) buildUser {
		return buildUser{Spec: "x", UID: uid, GID: gid, Name: "agent"}
	}
	for _, tc := range []struct {
		name     string
		u        buildUser
		ns       engineUserns
		wantSpec string
		wantUID  int
		wantName string
		wantErr  string
	}{
		{"the engine's own user is root inside", owner(1001, 1001), ns, "0:0", 0, "root", ""},
		{"a subordinate uid is its id inside", owner(100999, 100999), ns, "1000:1000", 1000, "build", ""},
		{"an unmapped group falls back to the engine user's", owner(1001, 50), ns, "0:0", 0, "root", ""},
		{"an owner the engine cannot be is refused", owner(1002, 1002), ns, "", 0, "", "belongs to uid 1002"},
		{"a rootful engine changes nothing", owner(1001, 1001), engineUserns{}, "x", 1001, "agent", ""},
		{"--user image changes nothing", buildUser{UID: -1, GID: -1}, ns, "", -1, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := inEngineUserns(tc.u, tc.ns, "/home/ci/ws")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--user") {
					t.Fatalf("inEngineUserns = %+v, %v; want an error naming %q and --user", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got.Spec != tc.wantSpec || got.UID != tc.wantUID || got.Name != tc.wantName {
				t.Errorf("inEngineUserns = %+v, %v; want %s (uid %d, %s)", got, err, tc.wantSpec, tc.wantUID, tc.wantName)
			}
		})
	}
}

// Root inside a rootless engine is the directory's owner outside, so a
// reachable directory is no door for it.
func TestRefuseRootDoorUnderRootless(t *testing.T) {
	root := buildUser{Spec: "0:0", UID: 0, GID: 0, Name: "root"}
	if err := refuseRootDoor("/", root, false); err == nil {
		t.Fatal("a rootful root build in / was not refused")
	}
	root.RootlessHost = 1001
	if err := refuseRootDoor("/", root, false); err != nil {
		t.Errorf("a rootless engine's root was refused: %v", err)
	}
}
