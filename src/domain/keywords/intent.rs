//! Opt-out *intent* in free text (rule A7): English and Spanish messages that ask to stop
//! without being an exact keyword ("please stop texting me", "no me escriban más").
//!
//! Nothing is acted on automatically: a flagged message waits for an agent to confirm the
//! opt-out with one key. So the rules below aim at the phrasings people really use and stay
//! away from ordinary text that merely contains "stop" or "no" ("stop by the store",
//! "don't stop the music", "no problem"). They work on the normalised words of
//! [`super::normalize`]: upper case, no accents, no punctuation ("don't" is `DONT`).

use super::normalize;

/// Politeness and emphasis that do not change what a short message asks for.
const FILLER: &[&str] = &[
    "PLEASE",
    "PLS",
    "PLZ",
    "PLEASEE",
    "NOW",
    "ALREADY",
    "JUST",
    "OK",
    "OKAY",
    "THANKS",
    "THANK",
    "YOU",
    "THX",
    "TY",
    "SERIOUSLY",
    "RIGHT",
    "AWAY",
    "YES",
    "I",
    "SAID",
    "POR",
    "FAVOR",
    "PORFA",
    "PORFAVOR",
    "PF",
    "GRACIAS",
    "YA",
    "AHORA",
    "MISMO",
    "SI",
    "OIGA",
];

/// Whole messages (fillers removed, repeats collapsed) that ask to stop.
const ALONE: &[&[&str]] = &[
    &["STOP"],
    &["STOP", "ALL"],
    &["STOPALL"],
    &["STOP", "IT"],
    &["UNSUB"],
    &["CANCEL"],
    &["CANCEL", "ALL"],
    &["END"],
    &["QUIT"],
    &["REVOKE"],
    &["OPTOUT"],
    &["ARRET"],
    &["REMOVE"],
    &["TD"],
    &["BAJA"],
    &["ALTO"],
    &["BASTA"],
    &["PAREN"],
    &["PARE"],
    &["DETENER"],
    &["CANCELAR"],
    &["NO", "MAS"],
];

/// Words that are opt-out intent wherever they appear.
const UNSUBSCRIBE: &[&str] = &[
    "UNSUBSCRIBE",
    "UNSUSCRIBE",
    "UNSUBSCRIBED",
    "OPTOUT",
    "DESUSCRIBIR",
    "DESUSCRIBIRME",
    "DESUSCRIBANME",
    "DESUSCRIBEME",
    "DESINSCRIBIRME",
    "DESAFILIARME",
    "DESAFILIENME",
];

const NEGATIONS: &[&str] = &["DONT", "NOT", "NEVER", "CANT", "CANNOT", "WONT", "DIDNT"];

/// What a subscriber asks to stop receiving (English).
const CONTACT_NOUNS: &[&str] = &[
    "TEXTING",
    "TEXTS",
    "TXTS",
    "MESSAGING",
    "MESSAGES",
    "MSGS",
    "SMS",
    "SENDING",
    "CONTACTING",
    "SPAMMING",
    "SPAM",
    "ALERTS",
    "NOTIFICATIONS",
    "CALLING",
    "EMAILING",
    "BOTHERING",
    "HARASSING",
    "SUBSCRIPTION",
    "SUBSCRIPTIONS",
    "PROMOTIONS",
    "PROMOS",
];

/// Words between a verb and its object that do not change the meaning.
const DETERMINERS: &[&str] = &[
    "ALL",
    "THE",
    "THESE",
    "THOSE",
    "THIS",
    "THAT",
    "YOUR",
    "ANY",
    "MY",
    "ME",
    "US",
    "WITH",
    "MORE",
    "ANYMORE",
    "TO",
    "RECEIVE",
    "GET",
    "GETTING",
    "RECEIVING",
    "FUCKING",
    "DAMN",
];

/// How a "don't text me" sentence may end and still mean "never again".
const NEVER_AGAIN_TAIL: &[&str] = &[
    "ANYMORE", "ANY", "MORE", "AGAIN", "EVER", "ANYTHING", "THESE", "THOSE", "THIS", "STUFF",
    "NUMBER", "AT", "ALL", "OK",
];

const CONTACT_VERBS: &[&str] = &[
    "TEXT", "TXT", "MESSAGE", "MSG", "SMS", "CONTACT", "CALL", "SEND", "EMAIL", "BOTHER", "SPAM",
];

const LIST_WORDS: &[&str] = &[
    "LIST", "LISTS", "MAILING", "CONTACTS", "DATABASE", "TEXTS", "MESSAGES", "SMS", "ALERTS",
];

/// What a subscriber asks to stop receiving (Spanish).
const ES_NOUNS: &[&str] = &[
    "MENSAJES",
    "MENSAJITOS",
    "MENSAJE",
    "SMS",
    "TEXTOS",
    "MSJ",
    "MSJS",
    "SPAM",
    "PUBLICIDAD",
    "PROMOCIONES",
    "PROMOS",
    "CORREOS",
    "SUSCRIPCION",
    "NOTIFICACIONES",
];

/// "(no) me …": imperatives of sending and bothering.
const ES_SEND_VERBS: &[&str] = &[
    "ESCRIBAN",
    "ESCRIBAS",
    "ESCRIBA",
    "MANDEN",
    "MANDES",
    "MANDE",
    "ENVIEN",
    "ENVIES",
    "ENVIE",
    "CONTACTEN",
    "CONTACTES",
    "CONTACTE",
    "LLAMEN",
    "MOLESTEN",
    "MOLESTES",
    "MOLESTE",
    "TEXTEEN",
];

/// How a "no me escriban" sentence may end and still mean "never again".
const ES_TAIL: &[&str] = &[
    "MAS", "NUNCA", "ESTOS", "ESOS", "ESTAS", "ESAS", "NADA", "A", "ESTE", "NUMERO", "DE", "TEXTO",
    "OTRA", "VEZ",
];

/// "dejen de …" with the subscriber as object: always a request to stop.
const ES_STOP_OBJECT_VERBS: &[&str] = &[
    "ESCRIBIRME",
    "ESCRIBIRNOS",
    "MANDARME",
    "ENVIARME",
    "CONTACTARME",
    "MOLESTARME",
    "MOLESTAR",
    "LLAMARME",
    "TEXTEARME",
    "SPAMEARME",
];

/// "dejen de …" without an object: a request to stop only when about messages.
const ES_STOP_BARE_VERBS: &[&str] = &["ESCRIBIR", "MANDAR", "ENVIAR", "TEXTEAR"];

/// "… de baja": forms of "dar de baja" (unsubscribe).
const ES_DAR: &[&str] = &[
    "DAR", "DARME", "DARNOS", "DARSE", "DENME", "DEN", "DENOS", "DOY", "DA", "DAN", "DEME",
];

/// Imperatives of "take me off / delete me".
const ES_REMOVE_VERBS: &[&str] = &[
    "SAQUENME",
    "SACAME",
    "SACARME",
    "SAQUEN",
    "BORRENME",
    "BORRAME",
    "BORRARME",
    "BORREN",
    "ELIMINENME",
    "ELIMINAME",
    "ELIMINARME",
    "ELIMINEN",
    "QUITENME",
    "QUITAME",
    "QUITARME",
    "REMUEVANME",
];

const ES_LIST_WORDS: &[&str] = &["LISTA", "LISTAS", "LISTADO", "BASE", "DATOS", "GRUPO"];

/// `true` when free text asks to stop receiving messages; see the module documentation.
pub fn opt_out_intent(body: &str) -> bool {
    opt_out_intent_normalized(&normalize(body))
}

/// [`opt_out_intent`] of a body already passed through [`normalize`]. Allocates nothing: the
/// words are walked in place.
pub fn opt_out_intent_normalized(normalized: &str) -> bool {
    let words = Words(normalized);
    if words.is_empty() {
        return false;
    }
    if asks_to_stop_alone(words) {
        return true;
    }
    let mut previous = None;
    let mut rest = words;
    while let Some(word) = rest.next() {
        if phrase_at(previous, word, rest) {
            return true;
        }
        previous = Some(word);
    }
    false
}

/// The words of a normalised message, left to right (empty words skipped), cheap to copy so
/// a rule can look ahead from any point.
#[derive(Clone, Copy)]
struct Words<'a>(&'a str);

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        while !self.0.is_empty() {
            let (word, rest) = self.0.split_once(' ').unwrap_or((self.0, ""));
            self.0 = rest;
            if !word.is_empty() {
                return Some(word);
            }
        }
        None
    }
}

impl<'a> Words<'a> {
    fn is_empty(mut self) -> bool {
        self.next().is_none()
    }

    /// The words after the first `n`.
    fn after(mut self, n: usize) -> Words<'a> {
        for _ in 0..n {
            self.next();
        }
        self
    }
}

fn is(word: &str, set: &[&str]) -> bool {
    set.contains(&word)
}

/// The message, without politeness, is only a stop word: "stop please", "ya basta".
fn asks_to_stop_alone(words: Words) -> bool {
    // Fillers dropped and repeats collapsed; no entry of ALONE is longer than two words.
    let mut core = [""; 2];
    let mut len = 0;
    for word in words.filter(|w| !is(w, FILLER)) {
        if len > 0 && core[len - 1] == word {
            continue;
        }
        if len == core.len() {
            return false;
        }
        core[len] = word;
        len += 1;
    }
    len > 0 && ALONE.contains(&&core[..len])
}

/// The first word of `words` that is not in `skip`, if it is in `set`.
fn next_is(mut words: Words, skip: &[&str], set: &[&str]) -> bool {
    words.find(|w| !is(w, skip)).is_some_and(|w| is(w, set))
}

/// Every word is filler or in one of `tails`.
fn only(mut words: Words, tails: &[&[&str]]) -> bool {
    words.all(|w| is(w, FILLER) || tails.iter().any(|tail| is(w, tail)))
}

/// Checks the phrases that start at `word`, which follows `previous` and precedes `rest`.
fn phrase_at(previous: Option<&str>, word: &str, rest: Words) -> bool {
    // `at(k)`: the k-th word from `word` (k ≥ 1); `after(k)`: the words after that one.
    let at = |k: usize| rest.after(k - 1).next();
    let after = |k: usize| rest.after(k - 1);
    let negated = previous.is_some_and(|p| is(p, NEGATIONS));
    match word {
        _ if is(word, UNSUBSCRIBE) => true,
        // "opt out", "opt me out"
        "OPT" => at(1) == Some("OUT") || (at(1) == Some("ME") && at(2) == Some("OUT")),
        // "stop texting me", "stop sending these messages" but not "don't stop sending deals"
        "STOP" | "QUIT" | "CEASE" => !negated && next_is(after(1), DETERMINERS, CONTACT_NOUNS),
        // "cancel my subscription", "end these alerts"
        "CANCEL" | "END" => !negated && next_is(after(1), DETERMINERS, CONTACT_NOUNS),
        // "don't text me anymore", "never contact me again", "do not text me"
        "DONT" | "NEVER" => never_contact_me(after(1)),
        "NOT" if previous == Some("DO") => never_contact_me(after(1)),
        // "I don't want any more texts"
        "WANT" if negated => next_is(after(1), DETERMINERS, CONTACT_NOUNS),
        // "no more texts"
        "NO" if at(1) == Some("MORE") => next_is(after(2), DETERMINERS, CONTACT_NOUNS),
        // "no más mensajes"
        "NO" if at(1) == Some("MAS") => at(2).is_some_and(|w| is(w, ES_NOUNS)),
        // "no me escriban más"
        "NO" if at(1) == Some("ME") => {
            at(2).is_some_and(|w| is(w, ES_SEND_VERBS)) && only(after(3), &[ES_TAIL, ES_NOUNS])
        }
        // "no quiero recibir más mensajes"
        "NO" if matches!(at(1), Some("QUIERO" | "DESEO")) => {
            after(2).take(3).any(|w| is(w, ES_NOUNS))
        }
        // "nunca más me escriban"
        "NUNCA" => {
            let mut rest = if at(1) == Some("MAS") {
                after(2)
            } else {
                after(1)
            };
            rest.next() == Some("ME") && rest.next().is_some_and(|w| is(w, ES_SEND_VERBS))
        }
        // "take me off your list", "remove me"
        "TAKE" | "REMOVE" | "DELETE" | "DROP" if at(1) == Some("ME") => off_the_list(after(2)),
        "LEAVE" => matches!(at(1), Some("ME" | "US")) && at(2) == Some("ALONE"),
        // "dejen de escribirme", "deja de mandar mensajes"
        "DEJEN" | "DEJA" | "DEJE" | "DEJAR" | "PAREN" | "PARE" if at(1) == Some("DE") => {
            at(2).is_some_and(|w| is(w, ES_STOP_OBJECT_VERBS))
                || (at(2).is_some_and(|w| is(w, ES_STOP_BARE_VERBS))
                    && only(after(3), &[ES_TAIL, ES_NOUNS]))
        }
        // "quiero darme de baja", "me doy de baja"
        "DE" => previous.is_some_and(|p| is(p, ES_DAR)) && at(1) == Some("BAJA"),
        // "sáquenme de su lista", "bórrenme"
        _ if is(word, ES_REMOVE_VERBS) => {
            let object_is_me = word.ends_with("ME") || previous == Some("ME");
            after(1).any(|w| is(w, ES_LIST_WORDS)) || (object_is_me && only(after(1), &[]))
        }
        // "cancelar mi suscripción"
        "CANCELAR" | "CANCELEN" | "CANCELA" | "CANCELE" => next_is(
            after(1),
            &["MI", "LA", "SU", "MIS", "LAS", "SUS", "ESTA", "ESTOS"],
            ES_NOUNS,
        ),
        // "basta de mensajes"
        "BASTA" => at(1) == Some("DE") && at(2).is_some_and(|w| is(w, ES_NOUNS)),
        _ => false,
    }
}

/// After "don't"/"never": a contact verb, "me", and nothing that limits it ("before 9").
fn never_contact_me(mut words: Words) -> bool {
    let mut ahead = words;
    if ahead.next() == Some("EVER") {
        words = ahead;
    }
    match (words.next(), words.next()) {
        (Some(verb), Some(object)) if is(verb, CONTACT_VERBS) && matches!(object, "ME" | "US") => {
            only(words, &[NEVER_AGAIN_TAIL, CONTACT_NOUNS])
        }
        _ => false,
    }
}

/// After "take me"/"remove me": nothing, "off", or "from/off … list".
fn off_the_list(words: Words) -> bool {
    let mut core = words.filter(|w| !is(w, FILLER));
    match core.next() {
        None => true,
        Some("OFF") => {
            let mut more = core.peekable();
            more.peek().is_none() || more.any(|w| is(w, LIST_WORDS))
        }
        Some("FROM") => core.any(|w| is(w, LIST_WORDS)),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_requests_to_stop() {
        for body in [
            "please stop texting me",
            "Stop texting me!!",
            "stop please",
            "Please stop.",
            "STOP IT",
            "stop stop stop",
            "Stop, thank you",
            "I said STOP",
            "Stop sending me these messages",
            "stop with the texts",
            "quit texting me",
            "unsubscribe me",
            "How do I unsubscribe?",
            "I want to opt-out",
            "opt me out",
            "take me off your list",
            "Take me off the list please",
            "remove me",
            "Remove me from your mailing list.",
            "please remove me from this list",
            "don't text me anymore",
            "Don’t text me again",
            "do not text me",
            "Do not contact me ever again",
            "never text me again",
            "Don't send me any more texts",
            "I don't want any more messages",
            "no more texts",
            "no more messages please",
            "leave me alone",
            "cancel my subscription",
            "End these alerts",
            "STOP ALL!",
            "cancel please",
            // Spanish
            "no me escriban más",
            "No me escribas mas por favor",
            "Por favor no me manden más mensajes",
            "no me envíen publicidad",
            "ya no me escriban",
            "nunca más me escriban",
            "no más mensajes",
            "No más",
            "no mas por favor",
            "dejen de escribirme",
            "Deja de mandarme mensajes!",
            "deja de mandar mensajes",
            "paren de molestar",
            "quiero darme de baja",
            "Me doy de baja",
            "denme de baja por favor",
            "baja",
            "Baja por favor",
            "ya basta",
            "basta de mensajes",
            "sáquenme de su lista",
            "quiero que me saquen de la lista",
            "bórrenme",
            "elimínenme de su base de datos",
            "no quiero recibir más mensajes",
            "No quiero más promociones",
            "cancelar suscripción",
            "cancelar mi suscripcion",
            "desuscribirme",
            "ALTO",
        ] {
            assert!(opt_out_intent(body), "should flag {body:?}");
        }
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for body in [
            "",
            "   ",
            "don't stop the music",
            "Don't stop sending me deals!",
            "when does the store close?",
            "no problem",
            "No problem, thanks!",
            "stop by the store tomorrow",
            "I'll stop by later and text you",
            "The bus stop is closed",
            "non-stop flights only",
            "I can't stop texting my friends about your sale",
            "no more questions, thanks",
            "No",
            "yes",
            "Thanks!",
            "Can you remove the item from my cart?",
            "Cancel my order please",
            "cancel my appointment",
            "Is this the end of the sale?",
            "take me to the store",
            "Take me off the waitlist",
            "remove me from the group photo",
            "don't text me before 9am",
            "Don't call me Shirley",
            "I don't want to miss your messages",
            "please send me the menu",
            "text me when it's ready",
            "what's your return policy",
            "help",
            // Spanish
            "no hay problema",
            "¿A qué hora cierran?",
            "Llego en no más de 10 minutos",
            "No me mandes la factura por correo, mejor por WhatsApp",
            "no me llamen antes de las 9",
            "Saquen la basura",
            "¿deja de llover mañana?",
            "la temperatura va de baja",
            "gracias",
            "no quiero nada más",
            "quiero cancelar mi pedido",
            "¿Tienen envío gratis?",
            "mándenme el catálogo por favor",
        ] {
            assert!(!opt_out_intent(body), "should not flag {body:?}");
        }
    }
}
