-- Argo CD health check for retrain.mlops.dev/RetrainPolicy (Lua 5.1, no libraries).
-- Argo CD sets the global `obj` to the resource and reads the returned status and message.
local hs = {}

local function text(value, fallback)
  if value == nil or value == "" then
    return fallback
  end
  return tostring(value)
end

local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = status.observedGeneration
if type(generation) == "number" and type(observed) == "number" and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. string.format("%d", generation)
  return hs
end

-- The API server refused one of the operator's writes (status.applyErrors has the details).
local function stalled(conditions)
  if type(conditions) ~= "table" then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == "Stalled" and condition.status == "True" then
      return condition
    end
  end
  return nil
end

local phase = status.phase
local message = text(status.message, "Phase " .. tostring(phase))
local rollout = status.rollout
local stall = stalled(status.conditions)

if phase == "Invalid" or phase == "Blocked" or phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = message
elseif stall ~= nil then
  hs.status = "Degraded"
  hs.message = text(stall.message, "Stalled: " .. text(stall.reason, "a write was refused"))
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = message
elseif type(rollout) == "table" and rollout.phase == "Paused" then
  -- A paused canary waits for a person: retrain.mlops.dev/promote (or the end of a pause by hand).
  hs.status = "Suspended"
  hs.message = text(rollout.message, "Canary " .. text(rollout.version, "rollout") .. " paused: awaiting manual promote")
elseif phase == "Ready" then
  hs.status = "Healthy"
  hs.message = message
else
  -- Pending, Training, RollingOut, and any phase this check does not know yet.
  hs.status = "Progressing"
  hs.message = message
end
return hs
