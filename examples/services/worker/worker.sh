#!/bin/sh
echo "$(cat /app/greeting) from $(uname -m) (built on $(cat /app/build-arch))"
