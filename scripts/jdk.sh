# Sourced by ./ferry, ./check and .ci/run: exports JAVA_HOME pointing at a JDK 25
# or newer, or stops with a message that says where it looked.
ferry_java_major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p'; }
ferry_find_jdk() {
  local candidate
  for candidate in "${FERRY_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/javac" ] || continue
    local major; major=$(ferry_java_major "$candidate")
    if [ -n "$major" ] && [ "$major" -ge 25 ]; then echo "$candidate"; return 0; fi
  done
  return 1
}
if ! FERRY_JDK=$(ferry_find_jdk); then
  echo "ferry: needs a JDK 25 or newer; none found in \$FERRY_JAVA_HOME, \$JAVA_HOME or /usr/lib/jvm." >&2
  echo "ferry: install Temurin 25 (or any JDK 25) and set FERRY_JAVA_HOME to its directory." >&2
  exit 1
fi
export JAVA_HOME="$FERRY_JDK"
export PATH="$JAVA_HOME/bin:$PATH"
