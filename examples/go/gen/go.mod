// The Go client generated from proto/ (go_package github.com/tributary-dev/tributary/gen/go/...)
// by scripts/gen-clients; only this file is committed. examples/go/go.mod replaces the module
// with this directory.
module github.com/tributary-dev/tributary/gen/go

go 1.24
