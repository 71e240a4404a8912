//! Common English given-name variants (a person named `Michael` signs as
//! `Mike`): groups of names that people use for one another. General
//! knowledge, not tied to any corpus.

/// Each group: names that may stand for one another.
const GROUPS: &[&[&str]] = &[
    &["abigail", "abby"],
    &["albert", "al", "bert"],
    &["alexander", "alex", "alec", "sandy"],
    &["alexandra", "alex", "sandra", "sandy"],
    &["andrew", "andy", "drew"],
    &["anthony", "tony"],
    &["barbara", "barb", "babs"],
    &["benjamin", "ben", "benny"],
    &["catherine", "cathy", "kate", "katie", "cat"],
    &["charles", "charlie", "chuck", "chas"],
    &["christina", "chris", "tina", "christy"],
    &["christine", "chris", "christy"],
    &["christopher", "chris", "kit"],
    &["daniel", "dan", "danny"],
    &["david", "dave", "davey"],
    &["deborah", "debbie", "debra", "deb"],
    &["donald", "don", "donnie"],
    &["douglas", "doug"],
    &["edward", "ed", "eddie", "ted"],
    &["elizabeth", "liz", "beth", "betsy", "betty", "lizzie"],
    &["frederick", "fred", "freddie"],
    &["gerald", "gerry", "jerry"],
    &["gregory", "greg"],
    &["henry", "hank"],
    &["james", "jim", "jimmy", "jamie"],
    &["jeffrey", "jeff", "jeffery", "geoffrey", "geoff"],
    &["jennifer", "jen", "jenny"],
    &["john", "jack", "johnny"],
    &["jonathan", "jon"],
    &["joseph", "joe", "joey"],
    &["katherine", "kathy", "kate", "katie", "kathryn"],
    &["kathleen", "kathy", "kate"],
    &["kenneth", "ken", "kenny"],
    &["kimberly", "kim"],
    &["lawrence", "larry"],
    &["margaret", "maggie", "peggy", "meg"],
    &["matthew", "matt"],
    &["michael", "mike", "mikey", "mick"],
    &["nicholas", "nick", "nicky"],
    &["patricia", "pat", "patty", "trish"],
    &["patrick", "pat"],
    &["peter", "pete"],
    &["philip", "phil", "phillip"],
    &["rebecca", "becky", "becca"],
    &["richard", "rick", "dick", "rich", "ricky"],
    &["robert", "bob", "rob", "bobby", "robbie", "bert"],
    &["ronald", "ron", "ronnie"],
    &["samuel", "sam", "sammy"],
    &["stephen", "steve", "steven"],
    &["susan", "sue", "suzy", "susie"],
    &["teresa", "terri", "terry", "theresa"],
    &["thomas", "tom", "tommy"],
    &["timothy", "tim", "timmy"],
    &["victoria", "vicki", "vicky", "tori"],
    &["vincent", "vince"],
    &["william", "bill", "will", "billy", "willy"],
];

/// Other names the given first name may be written as (lower case, without itself).
pub fn alternatives(first: &str) -> Vec<&'static str> {
    let first = first.to_lowercase();
    let mut out: Vec<&'static str> = GROUPS
        .iter()
        .filter(|g| g.contains(&first.as_str()))
        .flat_map(|g| g.iter().copied())
        .filter(|n| *n != first)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}
