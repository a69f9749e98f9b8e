package runner

import "testing"

func TestReapScopeMatchesOnlyItsObjects(t *testing.T) {
	mine := map[string]string{LabelManaged: "true", LabelOwner: "container:abc", "team": "a"}
	is := func(k, v string) LabelFilter { return LabelFilter{Key: k, Value: v} }
	has := func(k string) LabelFilter { return LabelFilter{Key: k, AnyValue: true} }
	for _, tc := range []struct {
		name   string
		scope  reapScope
		labels map[string]string
		want   bool
	}{
		{"everything of sibling-run's", reapScope{}, mine, true},
		{"not sibling-run's", reapScope{}, map[string]string{"team": "a"}, false},
		{"its owner", reapScope{owner: "container:abc"}, mine, true},
		{"another owner", reapScope{owner: "container:def"}, mine, false},
		{"label with value", reapScope{labels: []LabelFilter{is("team", "a")}}, mine, true},
		{"label with another value", reapScope{labels: []LabelFilter{is("team", "b")}}, mine, false},
		{"label key only", reapScope{labels: []LabelFilter{has("team")}}, mine, true},
		{"label absent", reapScope{labels: []LabelFilter{has("other")}}, mine, false},
		{"empty value is a value", reapScope{labels: []LabelFilter{is("team", "")}}, mine, false},
		{"every label", reapScope{labels: []LabelFilter{is("team", "a"), has(LabelOwner)}}, mine, true},
		{"one label missing", reapScope{labels: []LabelFilter{is("team", "a"), has("other")}}, mine, false},
	} {
		if got := tc.scope.matches(tc.labels); got != tc.want {
			t.Errorf("%s: matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOwnerGoneKeepsWhatItCannotJudge(t *testing.T) {
	me := currentOwner("")
	// No engine call is needed for these cases: api stays nil.
	if ownerGone(t.Context(), nil, me, owner{}, 0) {
		t.Error("an object without an owner label was judged orphaned")
	}
	if ownerGone(t.Context(), nil, me, owner{ID: "host:elsewhere.example", PID: 1}, 0) {
		t.Error("another host's process was judged gone")
	}
	if ownerGone(t.Context(), nil, me, me, 0) {
		t.Error("this very process was judged gone")
	}
	dead := me
	dead.Start = "1" // the same pid, started at another time: pid reuse
	if !ownerGone(t.Context(), nil, me, dead, 0) {
		t.Error("a process whose pid was reused was judged alive")
	}
}
