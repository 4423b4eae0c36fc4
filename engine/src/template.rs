//! A model's chat template rendered the way the model's own tooling renders it: Jinja as
//! Hugging Face's `apply_chat_template` runs it (jinja2 with `trim_blocks` and `lstrip_blocks`,
//! `raise_exception`, Python's string methods), which is also what vLLM does and what
//! llama-server's Jinja engine follows. llama.cpp's built-in `llama_chat_apply_template` only
//! recognises a template's family and writes that family's turns: it leaves out what the
//! template itself adds (SmolLM2's default system message, for one), so the in-process engine
//! would prompt the model differently from a server running the same GGUF.

use minijinja::{Environment, Error, ErrorKind, Value};

/// One user message and the generation prompt, rendered with `template`; `bos` and `eos` are
/// the model's own token texts, which templates may write.
pub(crate) fn render(template: &str, user: &str, bos: &str, eos: &str) -> Result<String, Error> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", |_format: String| -> String {
        // Templates that date their system message (Llama 3.1): a fixed date, so that a prompt
        // and its tokens do not change from one day to the next.
        "26 Jul 2024".to_string()
    });
    env.add_template("chat", template)?;
    let ctx = minijinja::context! {
        messages => vec![minijinja::context! { role => "user", content => user }],
        add_generation_prompt => true,
        bos_token => bos,
        eos_token => eos,
    };
    env.get_template("chat")?.render(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-Instruct's template as its GGUF carries it.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn a_default_system_message_the_template_adds_is_kept() {
        let out = render(SMOLLM2, "What is 6 times 7?", "", "<|im_end|>").unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 6 times 7?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_string_methods_and_whitespace_control_work_as_in_jinja2() {
        let t = "{%- for m in messages %}\n  {{- m.content.strip() | upper }}\n{%- endfor %}{% if add_generation_prompt %}>{% endif %}";
        assert_eq!(render(t, "  hi  ", "", "").unwrap(), "HI>");
        let t = "{{ raise_exception('no system role') }}";
        assert!(render(t, "x", "", "").is_err());
    }
}
