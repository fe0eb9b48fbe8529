
-- studyval: render Quarto callouts and figure cross-references with plain pandoc,
-- and refuse what Quarto would render differently.
local NBSP = "\u{00A0}"
local UNSUPPORTED = " is not supported by the fallback renderer"
local CALLOUT_TITLES = {
  note = "Note", tip = "Tip", warning = "Warning", caution = "Caution", important = "Important",
}
local CALLOUT_ATTRIBUTES = { title = true, appearance = true, icon = true }
local CROSSREF_PREFIXES = {
  fig = true, tbl = true, lst = true, eq = true, sec = true, thm = true, lem = true,
  cor = true, prp = true, cnj = true, def = true, exm = true, exr = true, sol = true,
  rem = true, nte = true, tip = true, wrn = true, cau = true, imp = true,
}
local LAYOUT_ATTRIBUTES = {
  layout = true, ["layout-ncol"] = true, ["layout-nrow"] = true,
  ["layout-align"] = true, ["layout-valign"] = true,
}

local function fail(message, ...)
  error("studyval: " .. message:format(...), 0)
end

local function crossref_prefix(id)
  local prefix = id:match("^(%a+)%-")
  if prefix and CROSSREF_PREFIXES[prefix:lower()] then
    return prefix:lower()
  end
  return nil
end

local function quarto_only_class(class)
  return class:match("^panel%-") or class:match("^column%-") or class:match("^content%-")
    or class == "page-columns" or class == "aside" or class == "margin-aside"
    or class == "callout" or class:match("^fig%-")
end

local function check_attr(el, what)
  for _, class in ipairs(el.classes) do
    if quarto_only_class(class) then
      fail("the %s class '.%s' (a Quarto feature)" .. UNSUPPORTED, what, class)
    end
  end
  for key, _ in pairs(el.attributes) do
    if LAYOUT_ATTRIBUTES[key] then
      fail("the %s attribute '%s' (Quarto layout)" .. UNSUPPORTED, what, key)
    end
  end
end

local function callout_kind(div)
  for _, class in ipairs(div.classes) do
    local kind = class:match("^callout%-(.+)$")
    if kind then
      if not CALLOUT_TITLES[kind] then
        fail("unknown callout '.callout-%s' (note, tip, warning, caution, important)", kind)
      end
      return kind
    end
  end
  return nil
end

-- In the PDF (pandoc's typst writer) a callout is a framed block of the
-- template's #callout function (templates/studyval-typst.typ), its title in bold.
local function typst_callout(div, kind, title, body)
  local head = ""
  if title then
    head = pandoc.write(pandoc.Pandoc({ pandoc.Plain(title) }), "typst"):gsub("%s+$", "")
  end
  local open = string.format('#callout(kind: "%s", title: [%s])[', kind, head)
  local blocks = pandoc.List({ pandoc.RawBlock("typst", open) })
  blocks:extend(body)
  blocks:insert(pandoc.RawBlock("typst", "]"))
  return pandoc.Div(blocks, pandoc.Attr(div.identifier, {}))
end

local function callout(div, kind)
  for key, _ in pairs(div.attributes) do
    if not CALLOUT_ATTRIBUTES[key] then
      fail("callout attribute '%s'" .. UNSUPPORTED .. " (use title, appearance, icon)", key)
    end
  end
  if div.identifier ~= "" and crossref_prefix(div.identifier) then
    fail("callout cross-reference id '#%s'" .. UNSUPPORTED, div.identifier)
  end
  local appearance = div.attributes.appearance or "default"
  if appearance ~= "default" and appearance ~= "simple" and appearance ~= "minimal" then
    fail("callout appearance '%s' must be default, simple or minimal", appearance)
  end
  local body = pandoc.List(div.content)
  local title = nil
  if div.attributes.title then
    local parsed = pandoc.read(div.attributes.title, "markdown").blocks
    title = (#parsed > 0 and parsed[1].content) or pandoc.Inlines({})
  elseif #body > 0 and body[1].t == "Header" then
    title = body[1].content
    body:remove(1)
  elseif appearance ~= "minimal" then
    title = pandoc.Inlines({ pandoc.Str(CALLOUT_TITLES[kind]) })
  end
  if FORMAT:match("typst") then
    return typst_callout(div, kind, title, body)
  end
  local show_icon = div.attributes.icon ~= "false" and appearance ~= "minimal"
  local classes = pandoc.List({ "callout", "callout-style-" .. appearance, "callout-" .. kind })
  if title then classes:insert("callout-titled") end
  if not show_icon then classes:insert("no-icon") end
  for _, class in ipairs(div.classes) do
    if class ~= "callout-" .. kind then classes:insert(class) end
  end
  local blocks = pandoc.List({})
  if title then
    local header = pandoc.List({})
    if show_icon then
      header:insert(pandoc.RawBlock(
        "html", '<div class="callout-icon-container"><i class="callout-icon"></i></div>'
      ))
    end
    local title_attr = pandoc.Attr("", { "callout-title-container" })
    header:insert(pandoc.Div({ pandoc.Plain(title) }, title_attr))
    blocks:insert(pandoc.Div(header, pandoc.Attr("", { "callout-header" })))
  end
  local body_attr = pandoc.Attr("", { "callout-body-container", "callout-body" })
  blocks:insert(pandoc.Div(body, body_attr))
  return pandoc.Div(blocks, pandoc.Attr(div.identifier, classes))
end

local function check_blocks(doc)
  return doc:walk({
    Div = function(div)
      local kind = callout_kind(div)
      if kind then
        return callout(div, kind)
      end
      check_attr(div, "div")
      if div.identifier ~= "" and crossref_prefix(div.identifier) then
        fail("'#%s' makes a Quarto cross-reference float, which the fallback renderer "
          .. "cannot number; use a {python} cell with label and fig-cap", div.identifier)
      end
    end,
    Span = function(span)
      check_attr(span, "span")
    end,
    Table = function(tbl)
      if tbl.identifier ~= "" and crossref_prefix(tbl.identifier) then
        fail("table cross-reference '#%s'" .. UNSUPPORTED, tbl.identifier)
      end
      -- Quarto's HTML default, tbl-colwidths: auto, drops pandoc's relative column
      -- widths from tables that contain a link
      local has_link = false
      pandoc.Blocks({ tbl }):walk({
        Link = function()
          has_link = true
        end,
      })
      if has_link then
        local colspecs = tbl.colspecs
        for i, spec in ipairs(colspecs) do
          colspecs[i] = { spec[1], pandoc.ColWidthDefault }
        end
        tbl.colspecs = colspecs
        return tbl
      end
    end,
    Str = function(str)
      local id = str.text:match("^{#([%w_-]+)}")
      if id and crossref_prefix(id) then
        fail("cross-reference id '{#%s}'" .. UNSUPPORTED, id)
      end
    end,
  })
end

local function number_figures(doc)
  local numbers = {}
  local count = 0
  doc = doc:walk({
    Figure = function(fig)
      local prefix = fig.identifier ~= "" and crossref_prefix(fig.identifier)
      if prefix == "fig" then
        count = count + 1
        numbers[fig.identifier] = count
        local label = "Figure" .. NBSP .. count
        local caption = fig.caption.long
        if #caption == 0 or #caption[1].content == 0 then
          fig.caption.long = { pandoc.Plain({ pandoc.Str(label) }) }
        else
          local first = caption[1]
          local prefix_inlines = pandoc.Inlines({ pandoc.Str(label .. ":"), pandoc.Space() })
          first.content = prefix_inlines .. first.content
          caption[1] = first
          fig.caption.long = caption
        end
        fig.classes:insert("quarto-float")
        return fig
      elseif prefix then
        fail("figure id '#%s' must start with 'fig-'", fig.identifier)
      end
    end,
  })
  doc:walk({
    Image = function(img)
      if img.src:match("^/") or img.src:match("^%a:[/\\]") then
        fail("image '%s' has an absolute path, which Quarto resolves against the report's "
          .. "directory, not the file system, so Quarto's report would miss it; link it with "
          .. "a path relative to the working directory (os.path.relpath) or a file:// URL, "
          .. "or show it with IPython.display.Image in a cell", img.src)
      end
      if img.identifier ~= "" and crossref_prefix(img.identifier) then
        fail("image '#%s' is not alone in its paragraph, so it is no figure", img.identifier)
      end
    end,
  })
  return doc, numbers
end

local function resolve_references(doc, numbers)
  return doc:walk({
    Cite = function(cite)
      local first = cite.citations[1]
      local id = first.id
      if #cite.citations == 1 and crossref_prefix(id) == "fig" then
        local key = "fig-" .. id:sub(5)
        local number = numbers[key]
        if not number then
          fail("'@%s' refers to no figure (no cell or image has label '%s')", id, key)
        end
        if #first.prefix > 0 or #first.suffix > 0 then
          fail("'@%s' with a prefix or suffix" .. UNSUPPORTED, id)
        end
        local text = "Figure" .. NBSP .. number
        if first.mode == "SuppressAuthor" then
          text = tostring(number)
        end
        local attr = pandoc.Attr("", { "quarto-xref" })
        return pandoc.Link({ pandoc.Str(text) }, "#" .. key, "", attr)
      end
      fail("'@%s' is a citation or cross-reference that the fallback renderer cannot "
        .. "resolve (only '@fig-...' references to labelled figures); "
        .. "write '\\@' for a literal '@'", id)
    end,
  })
end

-- HTML tables in cell output (pandas) become pandoc tables, as Quarto's
-- html-table-processing makes them, so that they are styled like the others.
local function html_tables(doc)
  return doc:walk({
    RawBlock = function(raw)
      if raw.format ~= "html" or not raw.text:lower():find("<table") then
        return nil
      end
      local ok, parsed = pcall(pandoc.read, raw.text, "html")
      if not ok then
        return nil
      end
      return parsed.blocks:walk({
        RawBlock = function(inner)
          if inner.format == "html" and inner.text:match("^%s*<style") then
            return {}
          end
        end,
        RawInline = function(inner)
          if inner.format == "html" and inner.text:match("^%s*<style") then
            return {}
          end
        end,
        Table = function(tbl)
          if tbl.classes:includes("dataframe") then
            tbl.classes:extend({ "table-sm", "table-striped", "small" })
          end
          local head = tbl.head
          local rows = head.rows
          for i, row in ipairs(rows) do
            row.attr = pandoc.Attr()
            rows[i] = row
          end
          head.rows = rows
          tbl.head = head
          return tbl
        end,
      })
    end,
  })
end

-- Typst refuses a link to a label that does not exist, where a browser ignores
-- it: in the PDF an internal link to no element of the document (the HTML
-- template's #title-block-header, say) is its text. Placeholders are highlighted
-- as the stylesheet highlights them on the page.
local function typst_links(doc)
  local ids = {}
  local function note(el)
    if el.identifier and el.identifier ~= "" then ids[el.identifier] = true end
  end
  doc:walk({ Header = note, Div = note, Span = note, Figure = note, Table = note,
    Image = note, Code = note, CodeBlock = note, Link = note })
  return doc:walk({
    Link = function(link)
      local target = link.target:match("^#(.+)$")
      if target and not ids[target] then
        return link.content
      end
    end,
    -- the amber placeholders of the page (items for the investigators to write)
    Span = function(span)
      if span.classes:includes("placeholder") then
        local inlines = pandoc.List({ pandoc.RawInline("typst", '#highlight(fill: rgb("#fff3cd"))[') })
        inlines:extend(span.content)
        inlines:insert(pandoc.RawInline("typst", "]"))
        return inlines
      end
    end,
  })
end

function Pandoc(doc)
  doc = html_tables(doc)
  doc = check_blocks(doc)
  local numbers
  doc, numbers = number_figures(doc)
  doc = resolve_references(doc, numbers)
  if FORMAT:match("typst") then
    doc = typst_links(doc)
  end
  return doc
end
