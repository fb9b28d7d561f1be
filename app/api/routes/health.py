from fastapi import APIRouter

from app.schemas.responses import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="health", summary="Liveness: answers at once, even during long trainings")
async def health() -> Health:
    return Health()
