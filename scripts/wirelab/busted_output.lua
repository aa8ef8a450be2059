-- wirelab.busted_output: busted's output handler for `wirelab test`. One
-- line per failure with its message, a dot per success, and the closing
-- line for people: "N passed, N failed, N skipped". With the option
-- `-Xoutput counts=FILE` it also writes "PASSED FAILED SKIPPED" to FILE,
-- which tests/run.sh reads: a count that no spec can fake by printing.
local io_write, io_flush, io_open = io.write, io.flush, io.open

return function(options)
  local busted = require "busted"
  local handler = require("busted.outputHandlers.base")()
  local verbose = os.getenv("WIRELAB_TEST_VERBOSE")
  local counts_file
  for _, a in ipairs(options.arguments or {}) do
    counts_file = a:match("^counts=(.+)$") or counts_file
  end

  local function describe(element, status, result)
    local name = handler.getFullName(element)
    local where = element.trace and element.trace.short_src .. ":" .. element.trace.currentline or ""
    io_write(("\n%s: %s (%s)\n"):format(status, name, where))
    if result and result.message then
      local msg = result.message
      if type(msg) ~= "string" then msg = require("pl.pretty").write(msg) end
      io_write("  ", tostring(msg):gsub("\n", "\n  "), "\n")
    end
    if result and result.trace and result.trace.traceback and status == "ERROR" then
      io_write("  ", result.trace.traceback:gsub("\n", "\n  "), "\n")
    end
  end

  handler.testEnd = function(element, parent, status, debug)
    if verbose then
      io_write(("[%s] %s\n"):format(status, handler.getFullName(element)))
    elseif status == "success" then
      io_write(".")
    elseif status == "pending" then
      io_write("s")
    end
    io_flush()
    return nil, true
  end

  handler.failureTest = function(element, parent, message, debug)
    describe(element, "FAIL", {message = message, trace = debug})
    return nil, true
  end

  handler.errorTest = function(element, parent, message, debug)
    describe(element, "ERROR", {message = message, trace = debug})
    return nil, true
  end

  handler.error = function(element, parent, message, debug)
    if element.descriptor ~= "it" then
      io_write(("\nERROR in %s %s: %s\n"):format(element.descriptor,
        element.name or "", tostring(message)))
    end
    return nil, true
  end

  handler.suiteEnd = function(suite, count, total)
    local failed = handler.failuresCount + handler.errorsCount
    -- a skipped test says why, so a user knows what did not run
    for _, p in ipairs(handler.pendings) do
      local msg = p.message
      io_write(("\nSKIP: %s%s"):format(p.name, msg and ("\n  " .. tostring(msg)) or ""))
    end
    if #handler.pendings > 0 then io_write("\n") end
    io_write(("\n%d passed, %d failed, %d skipped\n"):format(
      handler.successesCount, failed, handler.pendingsCount))
    io_flush()
    if counts_file then
      local f = io_open(counts_file, "w")
      if f then
        f:write(("%d %d %d\n"):format(handler.successesCount, failed, handler.pendingsCount))
        f:close()
      end
    end
    return nil, true
  end

  busted.subscribe({"test", "end"}, handler.testEnd, {predicate = handler.cancelOnPending})
  busted.subscribe({"failure", "it"}, handler.failureTest)
  busted.subscribe({"error", "it"}, handler.errorTest)
  busted.subscribe({"failure"}, handler.error)
  busted.subscribe({"error"}, handler.error)
  busted.subscribe({"suite", "end"}, handler.suiteEnd)
  return handler
end
