"""A prankster in the class, in a real browser (Chromium driven by Playwright): a crafted share
link, a typed id and a report built from crafted names draw no element and run no script."""

from urllib.parse import urlencode

from test_prank import crafted_report

# Would each draw an element with an id starting "pwn", a link away, or set window.__pwned.
INJECTED = "() => [document.querySelectorAll('[id^=pwn]').length, window.__pwned === undefined," \
           " document.querySelectorAll('a[href*=\"evil.example\"], img[src*=\"evil.example\"]').length]"



def test_a_crafted_share_link_draws_nothing(browser, server):
    link = server + "?" + urlencode({
        '<img src=x onerror="window.__pwned=1" id=pwn1>': "1",
        '<div id=pwn2 style="position:fixed;inset:0">sign in</div>': "1",
        "[sign in](http://evil.example/login)": "1",
        "size": '<img src="http://evil.example/t.png" id=pwn3>',
        "epochs": "3"})
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(link)
    note = page.get_by_text("Not applied:")
    note.wait_for(timeout=30_000)
    text = note.inner_text()
    assert "Settings from the link: epochs=3." in text
    assert "unknown setting '<img src=x onerror=\"…__pwned=1\" id=pwn1>'" in text  # as typed, bounded
    assert "unknown setting '[sign in](http://evil.example/login)'" in text
    assert page.evaluate(INJECTED) == [0, True, 0]
    page.close()


def test_a_typed_id_shows_as_text_in_the_toast(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server)
    page.get_by_role("tab", name="Reconstructions").click()
    page.get_by_label("Ids (blank: random validation images)").fill("<b/id=pwn4>boo</b>")
    page.get_by_role("button", name="Reconstruct", exact=True).click()
    toast = page.locator(".toast-body").filter(has_text="is not an id")
    toast.first.wait_for(timeout=30_000)
    assert "'<b/id=pwn4>boo</b>' is not an id" in toast.first.inner_text()
    assert page.evaluate(INJECTED) == [0, True, 0]
    page.close()


def test_a_report_of_crafted_names_runs_no_script(browser, app_module, server, tmp_path):
    report = crafted_report(app_module, tmp_path)
    page = browser.new_page()
    page.goto(report.as_uri())
    # as text: the upload's name (the report shows the validation split, with the label below)
    page.get_by_text("<img src=y onerror=window.__pwned=5 id=pwn5>.zip").first.wait_for(timeout=10_000)
    assert page.get_by_text("[sign in](javascript:window.__pwned=2)").count() >= 1
    assert page.evaluate(INJECTED) == [0, True, 0]
    assert page.locator("img").count() == page.locator("img[src$='.png']").count() >= 3  # the report's own pictures
    page.close()
