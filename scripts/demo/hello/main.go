// Command hello is the sample project that scripts/demo.sh builds with
// sibling-run: it greets whoever runs it.
package main

import (
	"fmt"
	"os"
	"runtime"
)

// greeting returns the line hello prints for name.
func greeting(name string) string {
	if name == "" {
		name = "Bamboo"
	}
	return fmt.Sprintf("Hello, %s! Built in a sibling container with %s.", name, runtime.Version())
}

func main() {
	name := ""
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	fmt.Println(greeting(name))
}
