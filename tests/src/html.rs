//! Reading the web UI's pages in the end-to-end tests: elements, form fields, messages and text,
//! found by an HTML5 parser (`scraper`) as a browser would find them, never by searching the
//! markup. Every helper parses, copies out what it answers and drops the tree, so nothing here
//! is held across an `.await`.

use scraper::{ElementRef, Html, Selector};

/// One element, copied out of the page.
#[derive(Debug, Clone)]
pub struct Tag {
    /// Its name, lower case (`input`, `form`, …).
    pub name: String,
    /// Attributes, entities decoded, names lower case.
    pub attrs: Vec<(String, String)>,
    /// Inner HTML as the parser serialises it again (empty for void elements).
    pub inner: String,
    /// Its text: tags dropped, entities decoded, white space collapsed (see [`text_of`]).
    pub text: String,
}

impl Tag {
    fn of(e: ElementRef<'_>) -> Tag {
        Tag {
            name: e.value().name().to_owned(),
            attrs: e
                .value()
                .attrs()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            inner: e.inner_html(),
            text: collapsed(e),
        }
    }

    /// The attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `class` lists `c`.
    pub fn has_class(&self, c: &str) -> bool {
        self.attr("class")
            .is_some_and(|v| v.split_whitespace().any(|x| x == c))
    }
}

/// The selector `css`; a test's own selector that does not parse stops the test.
fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("bad selector {css:?}: {e}"))
}

/// The text of an element's subtree, a space at each tag, white space collapsed.
fn collapsed(e: ElementRef<'_>) -> String {
    e.text()
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every element of `html` that the CSS selector `css` matches, in document order.
pub fn select(html: &str, css: &str) -> Vec<Tag> {
    let doc = Html::parse_document(html);
    doc.select(&selector(css)).map(Tag::of).collect()
}

/// Every `<tag>` element of `html`.
pub fn find_tags(html: &str, tag: &str) -> Vec<Tag> {
    select(html, tag)
}

/// The text of a page or fragment: tags dropped, entities decoded, white space collapsed.
pub fn text_of(html: &str) -> String {
    collapsed(Html::parse_document(html).root_element())
}

/// A start of a page's text, for messages.
pub fn snippet(body: &str) -> String {
    text_of(body).chars().take(1500).collect()
}

/// The element with `id`, whatever its name.
pub fn by_id(html: &str, id: &str) -> Option<Tag> {
    let doc = Html::parse_document(html);
    doc.root_element()
        .descendent_elements()
        .find(|e| e.value().id() == Some(id))
        .map(Tag::of)
}

/// The value a form field `name` shows: an `<input>`'s `value` (a checked one for radios), or a
/// `<textarea>`'s text as it is, or a `<select>`'s selected option.
pub fn field_value(html: &str, name: &str) -> Option<String> {
    let doc = Html::parse_document(html);
    let named = |css: &str| {
        doc.select(&selector(css))
            .filter(|e| e.value().attr("name") == Some(name))
            .collect::<Vec<_>>()
    };
    let inputs = named("input");
    if let Some(i) = inputs
        .iter()
        .find(|i| !matches!(i.value().attr("type"), Some("radio" | "checkbox")))
    {
        return Some(i.value().attr("value").unwrap_or_default().to_owned());
    }
    if let Some(i) = inputs.iter().find(|i| i.value().attr("checked").is_some()) {
        return i.value().attr("value").map(str::to_owned);
    }
    if let Some(t) = named("textarea").first() {
        return Some(t.text().collect());
    }
    named("select").first().and_then(|s| {
        s.select(&selector("option"))
            .find(|o| o.value().attr("selected").is_some())
            .map(|o| match o.value().attr("value") {
                Some(v) => v.to_owned(),
                None => o.text().collect(),
            })
    })
}

/// The values of the checked checkboxes (or radios) named `name`.
pub fn checked(html: &str, name: &str) -> Vec<String> {
    find_tags(html, "input")
        .into_iter()
        .filter(|t| t.attr("name") == Some(name) && t.attr("checked").is_some())
        .filter_map(|t| t.attr("value").map(str::to_owned))
        .collect()
}

/// The `action` of the form that holds the field `name` (an `<input>`, `<textarea>` or
/// `<select>`).
pub fn form_action_with(html: &str, name: &str) -> Option<String> {
    let doc = Html::parse_document(html);
    let fields = selector("input, textarea, select");
    doc.select(&selector("form"))
        .find(|f| {
            f.select(&fields)
                .any(|i| i.value().attr("name") == Some(name))
        })
        .and_then(|f| f.value().attr("action").map(str::to_owned))
}

/// The message of `<p class="field-error" data-field="{field}">`.
pub fn field_error(html: &str, field: &str) -> Option<String> {
    select(html, "p.field-error")
        .into_iter()
        .find(|t| t.attr("data-field") == Some(field))
        .map(|t| t.text)
}

/// The text of the page-level error message (`<div class="flash error">`).
pub fn flash_error(html: &str) -> Option<String> {
    select(html, "div.flash.error")
        .into_iter()
        .next()
        .map(|t| t.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "<!DOCTYPE html><html><head><title>Trang</title></head><body>\
        <div class=\"flash error\">Sai m&#7853;t kh&#x1EA9;u &amp; t&ecirc;n</div>\
        <form action=\"/account/password?a=1&amp;b=2\">\
        <input type=\"hidden\" name=\"csrf\" value=\"t&quot;&lt;k\">\
        <input type=\"radio\" name=\"kind\" value=\"software\">\
        <input type=\"radio\" name=\"kind\" value=\"infra\" checked>\
        <input type=\"checkbox\" name=\"env\" value=\"staging\" checked>\
        <input type=\"checkbox\" name=\"env\" value=\"production\">\
        <textarea name=\"description\">\n\n  Mô tả &lt;b&gt;giữ nguyên&lt;/b&gt;\n</textarea>\
        <select name=\"system\"><option value=\"A\">A</option><option selected>TTHC</option></select>\
        <input name=\"current_password\" type=\"password\">\
        </form>\
        <p class=\"field-error\" data-field=\"title\">Tiêu đề <strong>bắt buộc</strong></p>\
        <li id=\"x\" class=\"a b\">Nguyễn&nbsp;Văn <i>An</i></li>\
        </body></html>";

    #[test]
    fn fields_messages_and_text_come_back_as_typed() {
        assert_eq!(field_value(PAGE, "csrf").as_deref(), Some("t\"<k"));
        assert_eq!(field_value(PAGE, "kind").as_deref(), Some("infra"));
        assert_eq!(checked(PAGE, "env"), ["staging"]);
        assert_eq!(
            field_value(PAGE, "description").as_deref(),
            Some("\n  Mô tả <b>giữ nguyên</b>\n")
        );
        assert_eq!(field_value(PAGE, "system").as_deref(), Some("TTHC"));
        assert_eq!(field_value(PAGE, "missing"), None);
        assert_eq!(
            form_action_with(PAGE, "current_password").as_deref(),
            Some("/account/password?a=1&b=2")
        );
        assert_eq!(flash_error(PAGE).as_deref(), Some("Sai mật khẩu & tên"));
        assert_eq!(
            field_error(PAGE, "title").as_deref(),
            Some("Tiêu đề bắt buộc")
        );
        assert_eq!(field_error(PAGE, "tree"), None);
        let li = by_id(PAGE, "x").unwrap();
        assert!(li.has_class("b") && !li.has_class("c"));
        assert_eq!(li.text, "Nguyễn Văn An");
        assert!(text_of(PAGE).starts_with("Trang Sai mật khẩu & tên"));
    }
}
