# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure evaluation of API discovery documents (what `kubectl api-resources` shows)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def served_versions(api_group_list, group):
    """Versions of ``group`` the server serves (from the /apis APIGroupList), preferred first."""
    for item in (api_group_list or {}).get("groups") or []:
        if item.get("name") == group:
            preferred = (item.get("preferredVersion") or {}).get("version")
            versions = [v.get("version") for v in item.get("versions") or []]
            return sorted(versions, key=lambda v: v != preferred)
    return []


def resource_rows(resource_lists):
    """Rows of the api-resources table from APIResourceList documents (subresources left out)."""
    rows = []
    for doc in resource_lists:
        if not doc:
            continue
        for res in doc.get("resources") or []:
            if "/" in res.get("name", ""):
                continue
            rows.append(
                {
                    "name": res["name"],
                    "shortNames": list(res.get("shortNames") or []),
                    "apiVersion": doc.get("groupVersion"),
                    "namespaced": bool(res.get("namespaced")),
                    "kind": res.get("kind"),
                    "verbs": list(res.get("verbs") or []),
                }
            )
    return rows


def api_resources_table(rows):
    """The same table `kubectl api-resources` prints."""
    header = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    lines = [header] + [
        [r["name"], ",".join(r["shortNames"]), r["apiVersion"], "true" if r["namespaced"] else "false", r["kind"]]
        for r in sorted(rows, key=lambda r: (r["name"], r["apiVersion"]))
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines) + "\n"


def evaluate_resources(required, rows, group, versions_served):
    """Compare required resources with the served rows.

    ``required``: list of {"name", "kind", "namespaced", "versions": [accepted group versions]}.
    Returns {"ok": bool, "missing": [...], "wrong": [...], "found": [...], "message": str}.
    """
    missing, wrong, found = [], [], []
    for req in required:
        accepted = ["%s/%s" % (group, v) for v in req["versions"]]
        matches = [r for r in rows if r["name"] == req["name"] and r["apiVersion"] in accepted]
        if not matches:
            missing.append("%s (%s)" % (req["name"], " or ".join(accepted)))
            continue
        row = matches[0]
        problems = []
        if row["kind"] != req["kind"]:
            problems.append("kind %s, expected %s" % (row["kind"], req["kind"]))
        if row["namespaced"] != req["namespaced"]:
            problems.append("namespaced=%s, expected %s" % (str(row["namespaced"]).lower(), str(req["namespaced"]).lower()))
        if problems:
            wrong.append("%s: %s" % (req["name"], "; ".join(problems)))
        else:
            found.append("%s %s" % (row["apiVersion"], req["name"]))
    ok = not missing and not wrong
    if ok:
        message = "%s serves all %d required resources" % (group, len(required))
    else:
        served = ", ".join("%s/%s" % (group, v) for v in versions_served) if versions_served else "none (group not served)"
        parts = []
        if missing:
            parts.append("missing: %s" % ", ".join(missing))
        if wrong:
            parts.append("unexpected: %s" % ", ".join(wrong))
        message = "%s; versions of %s the server serves: %s" % ("; ".join(parts), group, served)
    return {"ok": ok, "missing": missing, "wrong": wrong, "found": found, "message": message}
