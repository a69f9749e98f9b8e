package runner

// LabelFilter selects engine objects by one label, as docker's `--filter
// label=…` does: the key with any value, or with exactly Value.
type LabelFilter struct {
	Key      string
	Value    string
	AnyValue bool // the key alone selects, whatever its value
}

// engineForm is the filter as the engine's label filter takes it.
func (f LabelFilter) engineForm() string {
	if f.AnyValue {
		return f.Key
	}
	return f.Key + "=" + f.Value
}

// engineForms are the filters' engine forms, for the logs.
func engineForms(fs []LabelFilter) []string {
	forms := make([]string, len(fs))
	for i, f := range fs {
		forms[i] = f.engineForm()
	}
	return forms
}

// matchesAll reports whether labels satisfy every one of want. The engine's
// filter is not enough on its own: Podman 4.3 lists the objects that match
// any one of several label filters, where Docker lists those that match all,
// and reap and prune must never widen their scope.
func matchesAll(labels map[string]string, want []LabelFilter) bool {
	for _, w := range want {
		got, ok := labels[w.Key]
		if !ok || !w.AnyValue && got != w.Value {
			return false
		}
	}
	return true
}
