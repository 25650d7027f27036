"""The settings screen as a person uses it: few keys to a field, one line per field, Selects
for choices, numbers checked as they are typed, refusals beside their field, a form that
stays put when one field changes, and no keystroke lost to a running training."""

import pytest
from textual import events
from textual.widgets import Input, OptionList, Select, Static, TabbedContent

from nnsim.tui.app import make_app
from nnsim.tui.screens import Field, PathPrompt, SettingsScreen
from tests.helpers import small_config, until

SMALL = (80, 24)




async def open_settings(pilot) -> SettingsScreen:
    await pilot.press("s")
    await until(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen))
    screen = pilot.app.screen
    await until(pilot, lambda: screen.focused is not None)
    return screen


def widget(screen, key: str):
    return next(w for w in screen.query("Input, Select") if w.name == key)


async def show_tab(pilot, screen, section: str) -> None:
    screen.query_one(TabbedContent).active = f"section-{section}"
    await pilot.pause(0.1)


async def test_the_learning_rate_is_one_key_from_opening():
    app = make_app(small_config(), paused=True)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_settings(pilot)
        assert screen.focused is widget(screen, "optimizer.name")  # the first field
        keys = ["tab"]
        await pilot.press(*keys)
        assert screen.focused is widget(screen, "optimizer.lr")
        assert len(keys) <= 4
        await pilot.press("0", ".", "2", "enter")  # focus selects the old text: typing replaces it
        await until(pilot, lambda: app.runner.sim.optimizer.lr == 0.2)


async def test_keys_typed_right_after_tab_reach_the_new_field():
    app = make_app(small_config(), paused=True)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_settings(pilot)
        for key, character in (("tab", None), ("1", "1"), ("2", "2")):  # one burst, no waits
            app.post_message(events.Key(key, character))
        field = widget(screen, "optimizer.lr")
        await until(pilot, lambda: field.value == "12")
        assert screen.focused is field
        # back up and on to the model tab's first field, again in one burst
        for key in ("tab", "shift+tab", "shift+tab", "shift+tab", "right", "tab"):
            app.post_message(events.Key(key, None))
        await until(pilot, lambda: screen.focused is widget(screen, "model.hidden"))
        await pilot.pause(0.2)
        sections = screen.query_one(TabbedContent)
        assert sections.active == "section-model"  # the focused field's section is shown
        await pilot.press("left")  # in a text field the arrows move the cursor
        assert sections.active == "section-model"


async def test_the_arrows_switch_sections_from_a_choice_field():
    """←/→ switch sections wherever they move no cursor: on the tab bar and on a choice
    (the first field, where the settings open); the hint under the form says so. They did
    nothing from a choice field."""
    app = make_app(small_config(), paused=True)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_settings(pilot)
        sections = screen.query_one(TabbedContent)
        assert screen.focused is widget(screen, "optimizer.name")
        await pilot.press("right")
        await until(pilot, lambda: sections.active == "section-model")
        assert screen.focused is widget(screen, "model.hidden")  # its first field: a text
        await pilot.press("left")  # … where the arrows move the cursor
        assert sections.active == "section-model"
        widget(screen, "model.activation").focus()  # a choice again
        await pilot.press("right")
        await until(pilot, lambda: sections.active == "section-train")
        assert screen.focused is widget(screen, "seed")
        assert "←/→" in str(screen.query_one("#status", Static).content)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_every_field_is_one_line_and_every_tab_fits(size):
    app = make_app(small_config(), paused=True)
    async with app.run_test(size=size) as pilot:
        screen = await open_settings(pilot)
        for section in ("optimizer", "model", "train", "data"):
            await show_tab(pilot, screen, section)
            fields = list(screen.query(f"#section-{section} Field"))
            assert fields
            for field in fields:
                assert field.outer_size.height == 1, field.key
                assert field.widget.outer_size.height == 1, field.key
                shown = field.widget if isinstance(field.widget, Input) else \
                    field.widget.query_one("SelectCurrent")
                assert shown.content_region.height == 1, field.key  # the value is in sight
            scroll = screen.query_one(f"#section-{section} VerticalScroll")
            assert scroll.max_scroll_y == 0, section  # nothing hidden below the fold
        await show_tab(pilot, screen, "model")
        help_text = screen.query_one("#field-model-norm_position .help")
        assert "before or after" in str(help_text.render())  # help on the field's own line
        heading_free = [str(label.render()) for label in screen.query(".key")]
        assert "norm_position" in heading_free


async def test_a_refused_value_keeps_the_old_one_and_says_why_under_its_field():
    app = make_app(small_config(), paused=True)
    async with app.run_test(size=SMALL) as pilot:
        app.runner.advance(3)
        await until(pilot, lambda: app.runner.sim.step_count == 3)
        screen = await open_settings(pilot)
        before = app.runner.sim.config
        status = str(screen.query_one("#status", Static).render())
        await pilot.press("tab", "minus", "3", "enter")
        error = screen.query_one("#error-optimizer-lr", Static)
        await until(pilot, lambda: "refused" in str(error.render()))
        assert "expected a number in (0, 10]" in str(error.render())
        field = screen.query_one("#field-optimizer-lr", Field)
        line = field.query_one(".line")
        assert error.region.y == line.region.y + 1 and error.region.height >= 1
        assert screen.query_one("#box").region.contains_region(error.region)  # in sight
        assert widget(screen, "optimizer.lr").value == "0.05"
        assert screen.config == before and app.runner.sim.config == before
        assert app.runner.sim.optimizer.lr == 0.05 and app.runner.sim.step_count == 3
        assert str(screen.query_one("#status", Static).render()) == status
        shown = [e for e in screen.query(".error") if e.display]
        assert shown == [error]
        # a config that cannot be built is refused the same way
        await show_tab(pilot, screen, "train")
        batch = widget(screen, "train.batch_size")
        batch.focus()
        await pilot.press("5", "0", "0", "0", "enter")
        error = screen.query_one("#error-train-batch_size", Static)
        await until(pilot, lambda: "larger than the training split" in str(error.render()))
        assert batch.value == "16" and app.runner.sim.step_count == 3


async def test_a_refusal_low_in_a_scrolled_tab_comes_into_sight():
    app = make_app(small_config(), paused=True)
    async with app.run_test(size=(80, 14)) as pilot:  # the data tab does not fit
        screen = await open_settings(pilot)
        await show_tab(pilot, screen, "data")
        augment = widget(screen, "data.augment")  # the tab's last field
        augment.focus()
        await pilot.press("9", "9", "enter")
        error = screen.query_one("#error-data-augment", Static)
        await until(pilot, lambda: "refused" in str(error.render()))
        scroll = screen.query_one("#section-data VerticalScroll")
        await until(pilot, lambda: scroll.region.contains_region(error.region))
        assert error.region.height >= 1 and app.runner.sim.config.data.augment == 0.0


async def test_a_new_activation_replaces_only_its_hyperparameter_rows():
    app = make_app(small_config(("model.normalizer", "batchnorm")), paused=True)
    async with app.run_test(size=(80, 16)) as pilot:  # small enough for the model tab to scroll
        screen = await open_settings(pilot)
        await pilot.press("shift+tab", "right", "tab", "tab")  # the model tab's activation
        select = widget(screen, "model.activation")
        assert screen.focused is select
        scroll = screen.query_one("#section-model VerticalScroll")
        assert scroll.max_scroll_y >= 1
        scroll.scroll_to(y=1, animate=False)
        await pilot.pause(0.1)
        box = screen.query_one("#hypers-model-activation")
        others = [w for w in screen.query("*") if box not in w.ancestors_with_self]
        await pilot.press("enter", "down", "down", "enter")  # tanh -> relu -> leaky_relu
        await until(pilot, lambda: app.runner.sim.config.model.activation.name == "leaky_relu")
        await until(pilot, lambda: any(w.name == "model.activation.slope"
                                       for w in screen.query(Input)))
        await pilot.pause(0.1)
        assert screen.focused is select
        now = [w for w in screen.query("*") if box not in w.ancestors_with_self]
        assert all(a is b for a, b in zip(now, others, strict=True))  # the same widgets
        assert scroll.scroll_y == 1
        slope = screen.query_one("#field-model-activation-slope", Field)
        assert slope.parent is box and slope.region.y == select.region.y + 1
        # back to one without hyperparameters: its row goes, nothing else
        select.value = "relu"
        await until(pilot, lambda: not box.children)
        assert screen.focused is select
        now = [w for w in screen.query("*") if box not in w.ancestors_with_self]
        assert all(a is b for a, b in zip(now, others, strict=True))


async def test_fixed_choices_are_selects():
    app = make_app(small_config(), paused=True)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_settings(pilot)
        for key in ("model.norm_position", "model.dtype", "data.preprocess", "data.name",
                    "optimizer.name", "model.activation", "model.initializer",
                    "model.bias_initializer", "model.normalizer"):
            assert isinstance(widget(screen, key), Select), key
        position = widget(screen, "model.norm_position")
        options = position.query_one(OptionList)
        assert [str(options.get_option_at_index(i).prompt)
                for i in range(options.option_count)] == ["before", "after"]
        position.value = "after"
        await until(pilot, lambda: app.runner.sim.config.model.norm_position == "after")


async def test_an_invalid_number_is_flagged_as_it_is_typed():
    app = make_app(small_config(), paused=True)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_settings(pilot)
        await pilot.press("tab", "1", "2")  # lr 12: outside (0, 10]
        field = widget(screen, "optimizer.lr")
        error = screen.query_one("#error-optimizer-lr", Static)
        await until(pilot, lambda: field.has_class("-invalid"))
        await until(pilot, lambda: "invalid" in str(error.render()) and error.display)
        assert field.value == "12" and app.runner.sim.optimizer.lr == 0.05  # not applied
        await pilot.press("backspace")
        await until(pilot, lambda: not field.has_class("-invalid"))
        await until(pilot, lambda: not error.display)
        await pilot.press("x")  # not a number: not even typed
        assert field.value == "1"
        await pilot.press("tab")
        beta = widget(screen, "optimizer.beta")
        await pilot.press("1")  # beta 1: the range is [0, 1)
        await until(pilot, lambda: beta.has_class("-invalid"))
        # the learning-rate field, left without Enter, shows the value in force again
        assert field.value == "0.05" and not error.display
        assert app.runner.sim.optimizer.lr == 0.05


async def test_training_waits_while_a_text_field_has_focus():
    app = make_app(small_config())
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_settings(pilot)
        await until(pilot, lambda: app.runner.sim.step_count > 2)
        assert not app.runner.paused  # focus on a Select: training goes on
        await pilot.press("tab")  # the learning rate, a text field
        await until(pilot, lambda: app.runner.paused)
        steps = app.runner.sim.step_count
        await pilot.press("tab")  # from one text field to the next: still waiting
        await pilot.press("0", ".", "5")
        await pilot.pause(0.3)
        assert app.runner.paused and app.runner.sim.step_count == steps
        assert widget(screen, "optimizer.beta").value == "0.5"  # every key arrived
        await pilot.press("shift+tab", "shift+tab")  # back on the Select
        await until(pilot, lambda: app.runner.sim.step_count > steps + 2)
        await pilot.press("tab")
        await until(pilot, lambda: app.runner.paused)
        await pilot.press("escape")  # closing the screen lets it go on as well
        await until(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        await until(pilot, lambda: not app.runner.paused)


async def test_a_paused_run_stays_paused_after_typing():
    app = make_app(small_config(), paused=True)
    async with app.run_test(size=SMALL) as pilot:
        await open_settings(pilot)
        await pilot.press("tab")
        await pilot.pause(0.1)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        await pilot.pause(0.2)
        assert app.runner.paused and app.runner.sim.step_count == 0


async def test_the_file_name_prompt_pauses_training_too():
    app = make_app(small_config())
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: app.runner.sim.step_count > 2)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, PathPrompt))
        await until(pilot, lambda: app.runner.paused)
        steps = app.runner.sim.step_count
        await pilot.pause(0.2)
        assert app.runner.sim.step_count == steps
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, PathPrompt))
        await until(pilot, lambda: app.runner.sim.step_count > steps + 2)


async def test_a_value_too_long_to_read_is_refused_under_its_field_not_a_crash():
    """An integer past Python's 4,300 digits, or brackets nested thousands deep: reading
    it raised in the submit handler and closed the app."""
    app = make_app(small_config(), paused=True)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_settings(pilot)
        lr = widget(screen, "optimizer.lr")
        for typed, says in (("1" * 4400, "more than 4,300 digits"), ("[" * 3000, "nested too deeply")):
            lr.value = typed
            lr.focus()
            await pilot.press("enter")
            error = screen.query_one("#error-optimizer-lr", Static)
            await until(pilot, lambda: says in str(error.render()))
        assert app.is_running and app.return_code is None
        assert app.runner.sim.optimizer.lr == 0.05
