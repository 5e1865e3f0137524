//! JWT keys and tokens for the proxy's jwt tests, generated once with Python's `cryptography`
//! (tokens expire in 2100 unless named otherwise; `HS256_*` use the secret `hs-secret`).
#![allow(dead_code)]

pub const RS256_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxk2BYDff9fapnYDRoQLY\nUrtbuhSXFKSCdSnzSGY0Og7ibiB/gAR9l/Eb/E3+sYlQeiz6iV1cuk88jkQdkfor\nEY2dUtNy3+sGBZRG1XvP4d4rIzEs9FuWr+s3kalf7JknpO8jU0QnKKSwB26XaCZ+\nf25gIsdpu31M65UG0fwAZxSv7uTdscVFPFeOV6+WstaSmWrd14nnSviN7E+KBiR5\ngeZ1nGD0AwyTrtWXb/pRbovC3AlMPcKJm7VFJDR8+wefAHD2fv6TLuEEVnAVrvE/\nATsh4qb4zomRkOSy1EqDUhzwiXlv+6xn0Hl+ytrmHc64lBKjJYhYfQCD6Pl7Sfir\nrQIDAQAB\n-----END PUBLIC KEY-----\n";
pub const ES256_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEMKfAcYYr7mllyE+kF2dEjlj2fk4J\nDf2YtatUgot6A0r3mlrK7xp/LTfgrrrIRoxiJjB13LskpgoAche4Lwf3ow==\n-----END PUBLIC KEY-----\n";
pub const ES512_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQB/861BpYJa6f+hcNSPAGkI0Wy/Dsa\n9rguI/pc+MVOHWRSP01v9s2xWTjgfVybA7I39Ycn3j0LPMowrwPk13iAbRsA6HlX\n64CbmaBIVP7Oj35EQBtgIKkGmz1qxBKExJKerpcF2Hiqy8b+UV0DEmS4ZEXffEcK\nE2iOnivhfE7hc0PyQzU=\n-----END PUBLIC KEY-----\n";
pub const EDDSA_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAdf3JMkP+feCabBomJZrQk1hmPGq9VDG/t3C49xDcyx0=\n-----END PUBLIC KEY-----\n";
pub const HS256_VALID: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJocy1rZXkiLCJleHAiOjQxMDI0NDQ4MDB9.lgsclJqSFuozp-Q_R_U_iTfVf99aOh1kW7gijAF-QIU";
pub const HS384_VALID: &str = "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJoczM4NC1rZXkiLCJleHAiOjQxMDI0NDQ4MDB9.Gv-9kUg3TZ_gR44iHb9NINo4Mu76SbtdRDpOXQbZAZvpFKzM1EtkzngQRJlS-vii";
pub const HS256_EXPIRED: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJocy1rZXkiLCJleHAiOjEwMDB9.FsevLY5CokeuCrGOFKTHmjPBNETLPxzMCBuXbut3OOY";
pub const HS256_NOT_YET: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJocy1rZXkiLCJleHAiOjQxMDI0NDQ4MDAsIm5iZiI6NDEwMjQ0NDgwMH0.oKp---D7OgTXpMBmfgOjWjnSHj16en5cqz8n0HRgzPw";
pub const HS256_UNKNOWN_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJub2JvZHkiLCJleHAiOjQxMDI0NDQ4MDB9.B8E4QIbhyVFefdDY1bHa7dfNyJ4LwQkTbQvefV_kDxM";
pub const HS256_NO_ISS: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjQxMDI0NDQ4MDB9.FIXVJUS2FV5AzagEOt8pyapgpXe1hiCimnoQUh85h-I";
pub const HS256_WRONG_SECRET: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJocy1rZXkiLCJleHAiOjQxMDI0NDQ4MDB9.lIDPvLce9nMv5NeZzV1HsFwM6WWP3zwaVBjZ3smVank";
pub const HS256_KID_CLAIM: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJraWQiOiJocy1rZXkiLCJleHAiOjQxMDI0NDQ4MDB9.gM33l3MeUNAlCRFk4raSFpVFek9k48Tn3UoJfUKzY70";
pub const RS256_VALID: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJycy1rZXkiLCJleHAiOjQxMDI0NDQ4MDB9.V8Vn0mqA6tB2zpeIelGrFDcf_UoEV1PpaW9S39lNqqHYLM1vPRpWs6phdkbjX9B0IW-RrjPyG1ZPIMSmVXPpHVEvhW1As-V2Esgf3WrlfBz0-FEYiG3Ec07RDjil00h9BZGbdAWMDFo0ZXUiNycTL35bkCFTrX1SwBK9dmooBdeRqsDuaCA0mjGJILmIK87_R5Z9FJQzMJjWlMr4sgt8sBlbAr2cj12aSs1lJn_KMavqTbC0yPxI2pynRt-C_Sg6noKztKZWSMINlytsh6q82BdVyl32PojNmSxfeu9LzuTYXjUNYr5dCIup_-255eymMoAiCAb8pcnTlD1tAm67Xg";
pub const ES256_VALID: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJlcy1rZXkiLCJleHAiOjQxMDI0NDQ4MDB9.nCHyrdCqnd27s2dZAY3CMcybagmPDeiJR7tUOTBLxnVWOHwZqZfyllvYXSxv-rLzCoBm8z8UPDLwNdZRMMjwjg";
pub const ES512_VALID: &str = "eyJhbGciOiJFUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJlczUxMi1rZXkiLCJleHAiOjQxMDI0NDQ4MDB9.AOGLBxbpR7FH8-WsuyVFGzVJim1XBqM3PNu0CK19BJfu4Nj_aRnevz-BW7_fOKuUPMP4JTlAzwTv0m6bTo0bv6gFAALpU3Bu3vVxLryy3AW8vP5AKkBIqoDY9XMqrvvdVCDVSUTdVw_RTbYv1ujnnoOKgDoWX7vFkktvxlOYMhYaiXx3";
pub const EDDSA_VALID: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJlZC1rZXkiLCJleHAiOjQxMDI0NDQ4MDB9.-tdxaWFdcQTerOlmSpCA-OF1W2XukHvObxVa-c2VK0tC65mJHwwTyfx5wzNcBR40c8ltkYKa2Fm4XDQhXbqVBA";
pub const ES256_AS_HS256: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJlcy1rZXkiLCJleHAiOjQxMDI0NDQ4MDB9.5vXnlg0d6QsB4N_hWr0lpLllCe2Fvb1y5GWqhlo2wjU";
