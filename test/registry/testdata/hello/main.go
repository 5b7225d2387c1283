// Command hello is the program of the test images: it prints a line and
// its argument, so a test can tell which image ran.
package main

import (
	"fmt"
	"os"
)

var variant = "a"

func main() {
	fmt.Println("hello from berth", variant, len(os.Args))
}
