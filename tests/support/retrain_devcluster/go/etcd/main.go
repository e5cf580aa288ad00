// etcd for the tests and the sandbox, built from the published etcd server module (the same
// entry point as the release binary). Dev tooling only: nothing here ships.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
