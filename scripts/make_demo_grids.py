"""Writes config/grids/qingshui.geojson: the fictional 清水区 used by the demo and the tests.

District 330199 with a 0.004° riverside margin that no base grid covers (its points go to the
district's fallback desk); 2 streets side by side; each street 2 communities stacked; each
community 2×2 base grids. Run it only to change the demo geography.
"""
import json
from pathlib import Path

W, S, E, N = 120.100, 30.250, 120.140, 30.280  # gridded area
MARGIN = 0.004
STREETS = [("001", "清河街道"), ("002", "明月街道")]
COMMUNITIES = [("001", "{}北社区"), ("002", "{}南社区")]


def box(w, s, e, n):
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def feature(code, name, level, parent, geom):
    return {"type": "Feature", "properties": {"code": code, "name": name, "level": level, "parent": parent}, "geometry": geom}


def main():
    r = lambda v: round(v, 6)
    feats = [feature("330199", "清水区", "district", None, box(r(W - MARGIN), r(S - MARGIN), r(E + MARGIN), r(N + MARGIN)))]
    sw = (E - W) / len(STREETS)
    for si, (scode, sname) in enumerate(STREETS):
        sw0, se0 = r(W + si * sw), r(W + (si + 1) * sw)
        street = "330199" + scode
        feats.append(feature(street, sname, "street", "330199", box(sw0, S, se0, N)))
        ch = (N - S) / len(COMMUNITIES)
        for ci, (ccode, cname) in enumerate(COMMUNITIES):
            cn, cs = r(N - ci * ch), r(N - (ci + 1) * ch)
            community = street + ccode
            short = sname[:2]
            feats.append(feature(community, cname.format(short), "community", street, box(sw0, cs, se0, cn)))
            mx, my = r((sw0 + se0) / 2), r((cs + cn) / 2)
            quads = [(sw0, my, mx, cn), (mx, my, se0, cn), (sw0, cs, mx, my), (mx, cs, se0, my)]
            for gi, q in enumerate(quads, start=1):
                code = community + f"{gi:03d}"
                feats.append(feature(code, f"{cname.format(short)}第{gi}网格", "grid", community, box(*q)))
    out = Path(__file__).resolve().parent.parent / "config" / "grids" / "qingshui.geojson"
    out.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(feats)} features")


if __name__ == "__main__":
    main()
