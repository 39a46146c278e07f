"""The grid hierarchy as GeoJSON, for the console's map and for integrators."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from gateway.api.deps import current_principal, errors, runtime
from gateway.auth import Principal
from gateway.api.parts import ApiRuntime

router = APIRouter(tags=["grids"])


class GridProperties(BaseModel):
    code: str = Field(description="6 (district), 9 (street), 12 (community) or 15 (base grid) digits")
    name: str
    level: Literal["district", "street", "community", "grid"]
    parent: str | None
    version: str
    mine: bool = Field(description="the caller may see this grid's tickets")


class GridFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    properties: GridProperties
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, WGS-84")


class GridCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[GridFeature]


@router.get("/grids", response_model=GridCollection, responses=errors(401, 422),
            summary="Grid polygons (GeoJSON FeatureCollection, WGS-84)")
def grids(level: Literal["district", "street", "community", "grid"] | None = Query(None),
          principal: Principal = Depends(current_principal), rt: ApiRuntime = Depends(runtime)) -> GridCollection:
    features = []
    for g in sorted(rt.grids.all(), key=lambda g: g.code):
        if level and g.level != level:
            continue
        f = g.to_feature()
        f["properties"]["mine"] = principal.sees_grid(g.code)
        features.append(f)
    return GridCollection.model_validate({"type": "FeatureCollection", "features": features})
