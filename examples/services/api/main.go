// api answers /healthz and / with the architecture it runs on.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
)

func main() {
	selftest := flag.Bool("selftest", false, "print the platform and exit")
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()
	if *selftest {
		fmt.Printf("api ok: %s/%s\n", runtime.GOOS, runtime.GOARCH)
		os.Exit(0)
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s/%s\n", runtime.GOOS, runtime.GOARCH)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
