#!/bin/bash
# Like chrislusf/seaweedfs's entrypoint: the first argument is a weed subcommand.
set -e
case "${1:-}" in
  server)
    shift
    exec /usr/bin/weed -logtostderr=true server -dir=/data "$@"
    ;;
  master | volume | filer | s3 | version | shell)
    exec /usr/bin/weed -logtostderr=true "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
