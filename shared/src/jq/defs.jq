# Definitions ugw adds to jaq's so that everyday filters mean in ugw what they mean in jq
# 1.7/1.8 (see ugw(7), JQ DIALECT). Names starting with _ugw_ keep jaq's own versions
# reachable from the definitions that replace them.
def _ugw_ltrimstr($x): ltrimstr($x);
def _ugw_rtrimstr($x): rtrimstr($x);
def _ugw_tonumber: tonumber;

# jq 1.5+: membership and indexing by a key.
def IN(s): any(s == .; .);
def IN(src; s): any(src == s; .);
def INDEX(stream; idx_expr): reduce stream as $row ({}; .[$row | idx_expr | tostring] |= $row);
def INDEX(idx_expr): INDEX(.[]; idx_expr);

# jq leaves the input alone when it or the argument is not a string.
def ltrimstr($x): if type == "string" and ($x | type) == "string" then _ugw_ltrimstr($x) else . end;
def rtrimstr($x): if type == "string" and ($x | type) == "string" then _ugw_rtrimstr($x) else . end;
# jq 1.8.
def trimstr($x): ltrimstr($x) | rtrimstr($x);

# jq writes null as nothing, and numbers and booleans as JSON.
def join($x): reduce .[] as $i (null;
    (if . == null then "" else . + $x end)
    + ($i | if . == null then "" elif type == "string" then . else tojson end)) // "";

# jq reads a number as its literal syntax does: ".89", "+5.43" and "5." are numbers; no
# white space around it, no hexadecimal.
def tonumber:
  if type == "number" then .
  elif type == "string" and test("^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$") then
    sub("^[+]"; "") | sub("^(?<sign>-?)[.]"; "\(.sign)0.") | sub("[.](?<e>[eE]|$)"; ".0\(.e)")
    | _ugw_tonumber
  elif type == "string" then error("Cannot parse '\(.)' as JSON")
  else error("\(type) (\(tojson)) cannot be parsed as a number")
  end;

# jq reads the key from key, k, name, Name, K or Key and the value from value, v or Value
# (the names jq 1.5 to 1.8 have read).
def from_entries: reduce .[] as $x ({};
    . + { ($x | if .key == null then .k // .name // .Name // .K // .Key else .key end
              | if type == "string" then . else tojson end):
          ($x | if has("value") then .value elif has("v") then .v else .Value end) });

# jq's streaming form: [path, leaf] for each leaf, [path] closing each array or object.
def tostream: path(def r: (.[]? | r), .; r) as $p | getpath($p)
  | reduce path(.[]?) as $q ([$p, .]; [$p + $q]);

def @html: tostring | gsub("&"; "&amp;") | gsub("<"; "&lt;") | gsub(">"; "&gt;")
  | gsub("'"; "&#39;") | gsub("\""; "&quot;");
def @csv: map(
    if type == "string" then "\"" + gsub("\""; "\"\"") + "\""
    elif type == "null" then ""
    elif type == "number" or type == "boolean" then tojson
    else error("\(type) (\(tojson)) is not valid in a csv row")
    end) | join(",");
def @tsv: map(
    if type == "string" then gsub("\\\\"; "\\\\") | gsub("\t"; "\\t") | gsub("\n"; "\\n") | gsub("\r"; "\\r")
    elif type == "null" then ""
    elif type == "number" or type == "boolean" then tojson
    else error("\(type) (\(tojson)) can not be tsv-formatted, only an array can be")
    end) | join("\t");
